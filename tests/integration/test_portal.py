"""The portal's sign-in paths over real HTTP, with invitations and resets read from a real
SMTP server: what a person does in a browser, minus the browser (tests/browser has that)."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator

import httpx
import pyotp
import pytest

from signoff import Client
from tests.conftest import smtp_settings
from tests.mailbox import Mailbox, link_in, text_of

PASSWORD = "correct horse battery"


@pytest.fixture
def settings_overrides(mailbox: Mailbox, request: pytest.FixtureRequest) -> dict[str, object]:
    extra = getattr(request, "param", {})
    return smtp_settings(mailbox) | extra


@pytest.fixture
def admin(server) -> Iterator[Client]:
    with Client(server.url, api_key=server.admin_key) as client:
        client.people.create_team("data-owners")
        yield client


@pytest.fixture
def browser(server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers={"accept": "text/html"}) as client:
        yield client


def csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def post(browser: httpx.Client, url: str, form_page: httpx.Response, **fields: str):
    return browser.post(url, data={"csrf_token": csrf(form_page), **fields})


def join(browser: httpx.Client, link: str) -> tuple[str, list[str]]:
    """Accept an invitation and enrol an authenticator; the TOTP secret and recovery codes."""
    path = httpx.URL(link).path
    form = browser.get(path)
    answer = post(browser, path, form, name="Dana", password=PASSWORD, password_again=PASSWORD)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/account/mfa"
    enrol = browser.get("/account/mfa")
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', enrol.text)
    assert secret
    assert "<svg" in enrol.text
    done = post(browser, "/account/mfa", enrol, code=pyotp.TOTP(secret.group(1)).now())
    assert done.status_code == 200, done.text
    codes = re.findall(r"<li><code>([a-z0-9-]{11})</code></li>", done.text)
    return secret.group(1), codes


def next_code(secret: str) -> str:
    return pyotp.TOTP(secret).at(time.time() + 30)


def test_an_invitee_joins_from_the_email_enrols_mfa_signs_out_and_in(admin, browser, mailbox):
    sent = admin.people.invite("Dana@Example.com", teams=["data-owners"])
    [message] = mailbox.wait_for("dana@example.com")
    assert message["Subject"] == "You are invited to signoff"
    assert link_in(message, "/invite/") == sent.link
    assert "data-owners" in text_of(message)

    secret, codes = join(browser, sent.link)
    assert len(codes) == 10
    home = browser.get("/")
    assert home.status_code == 200
    assert "Waiting for your decision" in home.text
    assert admin.people.list_invitations()[0].status == "accepted"

    signed_out = post(browser, "/logout", home)
    assert signed_out.headers["location"] == "/login?done=signed-out"
    assert browser.get("/").headers["location"] == "/login?next=/"

    login = browser.get("/login")
    answer = post(browser, "/login", login, email="dana@example.com", password=PASSWORD)
    assert answer.headers["location"] == "/login/code?next=/"
    code_page = browser.get("/login/code")
    wrong = post(browser, "/login/code", code_page, code="000000")
    assert wrong.status_code == 401
    assert "not right" in wrong.text
    right = post(browser, "/login/code", wrong, code=next_code(secret))
    assert right.status_code == 303
    assert right.headers["location"] == "/"
    assert browser.get("/").status_code == 200


def test_the_session_cookie_is_httponly_samesite_and_replaced_at_each_step(admin, browser):
    sent = admin.people.invite("dana@example.com")
    path = httpx.URL(sent.link).path
    answer = post(
        browser, path, browser.get(path), name="D", password=PASSWORD, password_again=PASSWORD
    )
    cookie = answer.headers["set-cookie"]
    assert "signoff_session=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    first = browser.cookies["signoff_session"]
    enrol = browser.get("/account/mfa")
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', enrol.text).group(1)  # type: ignore[union-attr]
    post(browser, "/account/mfa", enrol, code=pyotp.TOTP(secret).now())
    assert browser.cookies["signoff_session"] != first


@pytest.mark.parametrize("settings_overrides", [{"cookie_secure": True}], indirect=True)
def test_secure_cookies_can_be_required(admin, browser):
    sent = admin.people.invite("dana@example.com")
    path = httpx.URL(sent.link).path
    answer = post(
        browser, path, browser.get(path), name="D", password=PASSWORD, password_again=PASSWORD
    )
    assert "Secure" in answer.headers["set-cookie"]


def test_an_invitation_link_works_once_and_opening_it_changes_nothing(admin, browser):
    sent = admin.people.invite("dana@example.com")
    path = httpx.URL(sent.link).path
    assert browser.get(path).status_code == 200
    assert browser.get(path).status_code == 200  # a mail scanner's GET uses nothing up
    form = browser.get(path)
    post(browser, path, form, name="D", password=PASSWORD, password_again=PASSWORD)
    with httpx.Client(base_url=browser.base_url, headers={"accept": "text/html"}) as other:
        again = other.get(path)
    assert again.status_code == 410
    assert "already accepted" in again.text


def test_a_used_link_opened_while_signed_in_keeps_the_navigation(admin, browser):
    sent = admin.people.invite("dana@example.com")
    join(browser, sent.link)  # now signed in as dana
    again = browser.get(httpx.URL(sent.link).path)
    assert again.status_code == 410
    assert "already accepted" in again.text
    assert "Sign out" in again.text


def test_an_expired_or_resent_link_shows_why_it_no_longer_works(admin, browser):
    sent = admin.people.invite("dana@example.com")
    admin.people.resend_invitation(sent.id)
    old = browser.get(httpx.URL(sent.link).path)
    assert old.status_code == 410
    assert "newer one" in old.text


def test_a_form_without_its_csrf_token_or_from_another_site_is_refused(admin, browser):
    login = browser.get("/login")
    missing = browser.post("/login", data={"email": "a@example.com", "password": "x"})
    assert missing.status_code == 403
    assert "reload the page" in missing.text
    foreign = browser.post(
        "/login",
        data={"csrf_token": csrf(login), "email": "a@example.com", "password": "x"},
        headers={"origin": "https://evil.example"},
    )
    assert foreign.status_code == 403
    with httpx.Client(base_url=browser.base_url) as stranger:  # another browser's token
        stolen = stranger.post("/login", data={"csrf_token": csrf(login), "email": "a@b.c"})
    assert stolen.status_code == 403


def test_pages_carry_a_strict_content_security_policy_and_are_not_cached(browser):
    page = browser.get("/login")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "unsafe-inline" not in page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    css = browser.get("/static/signoff.css")
    assert css.status_code == 200
    assert "prefers-color-scheme: dark" in css.text


@pytest.mark.parametrize("settings_overrides", [{"login_attempts_per_minute": 3}], indirect=True)
def test_many_sign_in_attempts_from_one_address_are_slowed_down(browser):
    login = browser.get("/login")
    answers = [
        post(browser, "/login", login, email="a@example.com", password="wrong").status_code
        for _ in range(4)
    ]
    assert answers == [401, 401, 401, 429]


def test_a_disabled_person_is_signed_out_at_once(admin, browser):
    sent = admin.people.invite("dana@example.com")
    join(browser, sent.link)
    assert browser.get("/").status_code == 200
    admin.people.update_user("dana@example.com", is_active=False)
    assert browser.get("/").status_code == 303
    login = browser.get("/login")
    answer = post(browser, "/login", login, email="dana@example.com", password=PASSWORD)
    assert answer.status_code == 403
    assert "disabled" in answer.text


def test_a_forgotten_password_is_reset_from_the_emailed_link(admin, browser, mailbox):
    sent = admin.people.invite("dana@example.com")
    _secret, _ = join(browser, sent.link)
    reset_form = browser.get("/reset")
    asked = post(browser, "/reset", reset_form, email="DANA@example.com")
    assert "Check your email" in asked.text
    unknown = post(browser, "/reset", reset_form, email="nobody@example.com")
    assert unknown.text.replace("nobody", "dana") == asked.text.replace("DANA", "dana")
    [message] = mailbox.wait_for("dana@example.com", count=2)[1:]
    assert message["Subject"] == "Reset your signoff password"
    path = httpx.URL(link_in(message, "/reset/")).path
    form = browser.get(path)
    weak = post(browser, path, form, password="password", password_again="password")
    assert weak.status_code == 422
    assert "common" in weak.text
    done = post(
        browser, path, form, password="new horse battery", password_again="new horse battery"
    )
    assert done.headers["location"] == "/login?done=reset"
    assert browser.get(path).status_code == 410
    login = browser.get("/login?done=reset")
    assert "Your password is changed" in login.text
    answer = post(browser, "/login", login, email="dana@example.com", password="new horse battery")
    assert answer.headers["location"].startswith("/login/code")


def test_members_cannot_invite_or_change_users(server, admin):
    admin.people.create_user("bob@example.com")
    key = admin.people.create_key(user="bob@example.com").key
    with Client(server.url, api_key=key) as bob:
        from signoff import errors

        with pytest.raises(errors.PermissionDenied):
            bob.people.invite("eve@example.com")
        with pytest.raises(errors.PermissionDenied):
            bob.people.update_user("bob@example.com", role="admin")
        with pytest.raises(errors.PermissionDenied):
            bob.people.list_invitations()


def test_without_an_identity_provider_there_is_no_provider_sign_in(browser):
    assert "Sign in with" not in browser.get("/login").text
    assert browser.get("/auth/oidc/login").status_code == 404


def test_the_home_page_lists_only_what_the_person_may_decide(admin, browser, server):
    admin.people.create_team("other-team")
    mine = admin.approvals.create(title="Load batch 7?", approvers=["team:data-owners"])
    theirs = admin.approvals.create(title="Secret merger data?", approvers=["team:other-team"])
    sent = admin.people.invite("dana@example.com", teams=["data-owners"])
    join(browser, sent.link)
    home = browser.get("/").text
    assert mine.id in home
    assert "Load batch 7?" in home
    assert theirs.id not in home
    assert "Secret merger" not in home


def test_half_way_through_signing_in_one_can_sign_out_and_start_again(admin, browser):
    sent = admin.people.invite("dana@example.com")
    join(browser, sent.link)
    post(browser, "/logout", browser.get("/"))
    login = browser.get("/login")
    post(browser, "/login", login, email="dana@example.com", password=PASSWORD)
    code_page = browser.get("/login/code")
    assert "Sign out" in code_page.text
    out = post(browser, "/logout", code_page)
    assert out.headers["location"] == "/login?done=signed-out"
    assert browser.get("/login/code").headers["location"] == "/login"


def test_the_page_asked_for_comes_back_whole_after_the_second_factor(admin, browser):
    sent = admin.people.invite("dana@example.com")
    secret, _ = join(browser, sent.link)
    post(browser, "/logout", browser.get("/"))
    login = browser.get("/login")
    answer = post(
        browser,
        "/login",
        login,
        email="dana@example.com",
        password=PASSWORD,
        next="/?status=pending&label=nightly",
    )
    code_page = browser.get(answer.headers["location"])
    kept = re.search(r'name="next" value="([^"]*)"', code_page.text)
    assert kept
    right = post(
        browser, "/login/code", code_page, code=next_code(secret), next=html.unescape(kept[1])
    )
    assert right.headers["location"] == "/?status=pending&label=nightly"


def test_an_enrolment_finished_elsewhere_does_not_trap_the_first_browser(admin, browser, server):
    sent = admin.people.invite("dana@example.com")
    path = httpx.URL(sent.link).path
    post(browser, path, browser.get(path), name="D", password=PASSWORD, password_again=PASSWORD)
    with httpx.Client(base_url=server.url, headers={"accept": "text/html"}) as other:
        login = other.get("/login")
        post(other, "/login", login, email="dana@example.com", password=PASSWORD)
        enrol = other.get("/account/mfa")
        secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', enrol.text)
        assert secret
        post(other, "/account/mfa", enrol, code=pyotp.TOTP(secret.group(1)).now())
    stuck = browser.get("/account/mfa")
    assert stuck.headers["location"] == "/login"
    assert browser.get("/login").status_code == 200
