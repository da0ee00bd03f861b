"""The admin pages over real HTTP, as a signed-in admin's browser uses them (minus the
browser: tests/browser/test_admin.py has that): every form posts, redirects and says what it
did, or shows the service's refusal beside its field; and nobody else gets anywhere."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pyotp
import pytest
from fastapi.routing import APIRoute
from sqlalchemy import update

from signoff import Client
from signoff.store.engine import Database
from signoff.store.tables import AuditEntryRow
from signoff.web.portal import admin as admin_pages
from tests import factories
from tests.receivers import Receiver, free_port

PASSWORD = "correct horse battery"


@pytest.fixture
def admin(server) -> Iterator[Client]:
    with Client(server.url, api_key=server.admin_key) as client:
        yield client


def person(server, admin: Client, email: str, role: str = "member") -> httpx.Client:
    """A browser signed in as a new person with ``role``, past the second factor."""
    browser = httpx.Client(base_url=server.url, headers={"accept": "text/html"})
    link = admin.people.invite(email, role=role).link
    path = httpx.URL(link).path
    joined = post(
        browser,
        path,
        browser.get(path),
        name=email.split("@")[0],
        password=PASSWORD,
        password_again=PASSWORD,
    )
    assert joined.status_code == 303, joined.text
    enrol = browser.get("/account/mfa")
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', enrol.text)
    assert secret
    done = post(browser, "/account/mfa", enrol, code=pyotp.TOTP(secret.group(1)).now())
    assert done.status_code == 200, done.text
    return browser


@pytest.fixture
def browser(server, admin) -> Iterator[httpx.Client]:
    signed_in = person(server, admin, "ada@example.com", role="admin")
    yield signed_in
    signed_in.close()


def csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def post(browser: httpx.Client, url: str, form_page: httpx.Response, **fields: object):
    return browser.post(url, data={"csrf_token": csrf(form_page), **fields})


def follow(browser: httpx.Client, answer: httpx.Response) -> httpx.Response:
    assert answer.status_code == 303, answer.text
    return browser.get(answer.headers["location"])


def text(page: httpx.Response) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", page.text))


def test_the_overview_counts_people_invitations_and_links_every_page(admin, browser):
    admin.people.invite("bob@example.com")
    page = browser.get("/admin")
    assert page.status_code == 200
    assert re.search(r'class="count">1</span> pending invitations', page.text)
    assert re.search(r'class="count">1</span> people with access', page.text)
    assert re.search(r'class="count">0</span> approvals pending', page.text)
    admin.people.create_user("carol@example.com")
    for n in range(3):
        admin.approvals.create(title=f"Approve {n}?", approvers=["carol@example.com"])
    page = browser.get("/admin")
    assert re.search(r'class="count">3</span> approvals pending', page.text)
    for path in (
        "/admin/people",
        "/admin/teams",
        "/admin/keys",
        "/admin/policies",
        "/admin/subscriptions",
        "/admin/deliveries",
        "/admin/audit",
    ):
        assert f'href="{path}"' in page.text
        shown = browser.get(path)
        assert shown.status_code == 200, (path, shown.text)
        assert "<h1>" in shown.text
        assert shown.headers["cache-control"] == "no-store"


def test_an_invitation_without_email_shows_its_link_once(admin, browser):
    admin.people.create_team("data-owners")
    people = browser.get("/admin/people")
    answer = post(
        browser,
        "/admin/people/invite",
        people,
        email="Bob@Example.com",
        role="admin",
        teams="data-owners",
    )
    assert answer.status_code == 200
    link = re.search(r'id="invite-link"[^>]*value="([^"]+)"', answer.text)
    assert link
    assert "/invite/" in link.group(1)
    [sent] = [i for i in admin.people.list_invitations() if i.email == "bob@example.com"]
    assert (sent.role, sent.teams) == ("admin", ["data-owners"])
    again = browser.get("/admin/people")
    assert link.group(1) not in again.text
    assert "bob@example.com" in again.text

    twice = post(browser, "/admin/people/invite", again, email="bob@example.com")
    assert twice.status_code == 409
    assert 'id="f-email-error"' in twice.text
    assert "pending invitation" in text(twice)
    bad = post(browser, "/admin/people/invite", again, email="not-an-address")
    assert bad.status_code == 422
    assert "is not an email address" in text(bad)

    resent = post(browser, f"/admin/invitations/{sent.id}/resend", again)
    assert resent.status_code == 200
    assert re.search(r'id="invite-link"[^>]*value="[^"]*/invite/', resent.text)
    revoked = follow(browser, post(browser, f"/admin/invitations/{sent.id}/revoke", again))
    assert "The invitation is revoked." in revoked.text
    assert [i.status for i in admin.people.list_invitations() if i.id == sent.id] == ["revoked"]


def test_roles_and_access_change_and_the_last_admin_is_kept(server, admin, browser):
    member = person(server, admin, "bob@example.com")
    [bob] = [u for u in admin.people.list_users() if u.email == "bob@example.com"]
    page = browser.get(f"/admin/people/{bob.id}")
    assert "not set up" not in page.text  # bob set up an authenticator when he joined
    disabled = follow(browser, post(browser, f"/admin/people/{bob.id}/disable", page))
    assert "The account is disabled" in disabled.text
    assert member.get("/").status_code == 303  # signed out at once
    follow(browser, post(browser, f"/admin/people/{bob.id}/enable", disabled))
    promoted = follow(browser, post(browser, f"/admin/people/{bob.id}/role", page, role="admin"))
    assert "The role is changed" in promoted.text
    assert [u.role for u in admin.people.list_users() if u.id == bob.id] == ["admin"]

    follow(browser, post(browser, f"/admin/people/{bob.id}/role", page, role="member"))
    users = admin.people.list_users()
    [ada] = [u for u in users if u.email == "ada@example.com"]
    [key_owner] = [u for u in users if u.kind == "service" and u.role == "admin"]
    admin.people.update_user(key_owner.id, is_active=False)  # ada is the last active admin now
    mine = browser.get(f"/admin/people/{ada.id}")
    refused = post(browser, f"/admin/people/{ada.id}/role", mine, role="member")
    assert refused.status_code == 409
    assert "last active admin" in text(refused)
    member.close()


def test_teams_are_created_filled_emptied_and_deleted(admin, browser):
    teams = browser.get("/admin/teams")
    assert "No teams yet" in teams.text
    bad = post(browser, "/admin/teams", teams, name="no spaces")
    assert bad.status_code == 422
    assert 'id="f-name-error"' in bad.text
    team = follow(browser, post(browser, "/admin/teams", teams, name="data-owners"))
    assert "The team is created." in team.text
    assert "No members yet" in team.text
    [ada] = [u for u in admin.people.list_users() if u.email == "ada@example.com"]
    added = follow(browser, post(browser, "/admin/teams/data-owners/members", team, user=ada.id))
    assert "ada@example.com" in added.text
    assert admin.people.list_teams()[0].member_ids == [ada.id]
    follow(browser, post(browser, f"/admin/teams/data-owners/members/{ada.id}/remove", added))
    assert admin.people.list_teams()[0].member_ids == []
    confirm = browser.get("/admin/teams/data-owners/delete")
    assert "Delete team data-owners?" in confirm.text
    gone = follow(browser, post(browser, "/admin/teams/data-owners/delete", confirm))
    assert "The team is deleted." in gone.text
    assert admin.people.list_teams() == []


def test_a_new_key_is_shown_once_and_works_until_revoked(server, admin, browser):
    keys = browser.get("/admin/keys")
    account = follow(
        browser,
        post(
            browser,
            "/admin/service-accounts",
            keys,
            email="etl@pipelines.example.com",
            name="nightly ETL",
        ),
    )
    assert "The service account is created." in account.text
    [etl] = [u for u in admin.people.list_users() if u.email == "etl@pipelines.example.com"]
    assert f'<option value="{etl.id}" selected>' in account.text
    refused = post(browser, "/admin/keys", account, user=etl.id, scopes="admin")
    assert refused.status_code == 422
    assert "more than its user" in text(refused)
    created = post(
        browser,
        "/admin/keys",
        account,
        user=etl.id,
        name="prod",
        scopes=["approvals:read", "approvals:write"],
        expires_in="30d",
    )
    assert created.status_code == 200
    assert created.headers["cache-control"] == "no-store"
    secret = re.search(r'id="secret"[^>]*value="([^"]+)"', created.text)
    assert secret
    with Client(server.url, api_key=secret.group(1)) as pipeline:
        assert pipeline.policies.list().items == []
    listed = browser.get("/admin/keys")
    assert secret.group(1) not in listed.text
    assert secret.group(1)[:8] in listed.text
    [key] = [k for k in admin.people.list_keys() if k.user_id == etl.id]
    follow(browser, post(browser, f"/admin/keys/{key.id}/revoke", listed))
    [key] = [k for k in admin.people.list_keys() if k.user_id == etl.id]
    assert key.revoked_at is not None


def test_a_policy_is_created_refused_field_by_field_edited_and_deleted(admin, browser):
    admin.people.create_team("data-owners")
    form = browser.get("/admin/policies/_new")
    fields = {
        "name": "prod-promotion",
        "approvers": "team:data-owners",
        "quorum": "2",
        "rejections_to_reject": "1",
        "timeout": "3d",
        "on_timeout": "reject",
    }
    bad_json = post(browser, "/admin/policies", form, **fields, form="{not json")
    assert bad_json.status_code == 422
    assert 'id="f-form-error"' in bad_json.text
    assert "not JSON" in text(bad_json)
    unknown = post(browser, "/admin/policies", form, **(fields | {"approvers": "team:nobody"}))
    assert 'id="f-approvers-error"' in unknown.text
    bad_schema = post(browser, "/admin/policies", form, **fields, form='{"type": 5}')
    assert 'id="f-form-error"' in bad_schema.text
    bad_quorum = post(browser, "/admin/policies", form, **(fields | {"quorum": "0"}))
    assert 'id="f-quorum-error"' in bad_quorum.text
    schema = '{"type": "object", "properties": {"ticket": {"type": "string"}}}'
    shown = follow(
        browser,
        post(browser, "/admin/policies", form, **fields, form=schema, comment_required="on"),
    )
    assert "The policy is created." in shown.text
    assert "2 approvals approve it." in shown.text
    assert "Times out after 3d: it is rejected." in shown.text
    policy = admin.policies.get("prod-promotion")
    assert (policy.quorum, policy.comment_required, policy.form["type"]) == (2, True, "object")

    edit = browser.get("/admin/policies/prod-promotion/edit")
    assert "team:data-owners" in edit.text
    follow(
        browser,
        post(
            browser,
            "/admin/policies/prod-promotion",
            edit,
            **(fields | {"quorum": "1", "timeout": ""}),
        ),
    )
    assert admin.policies.get("prod-promotion").quorum == 1
    confirm = browser.get("/admin/policies/prod-promotion/delete")
    follow(browser, post(browser, "/admin/policies/prod-promotion/delete", confirm))
    assert admin.policies.list().items == []


def form_fields(page: httpx.Response) -> dict[str, str]:
    """What a browser posts from ``page``'s form unchanged: every input, box and choice."""
    found = {"csrf_token": csrf(page)} | {
        name: html.unescape(value)
        for name, kind, value in re.findall(
            r'<input id="[^"]*" name="(\w+)" type="(text|number|hidden)" value="([^"]*)"',
            page.text,
        )
    }
    for name, value in re.findall(
        r'<textarea[^>]* name="(\w+)"[^>]*>([^<]*)</textarea>', page.text
    ):
        found[name] = html.unescape(value)
    for name, body in re.findall(r'<select[^>]* name="(\w+)"[^>]*>(.*?)</select>', page.text, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', body)
        found[name] = chosen.group(1) if chosen else ""
    for name in re.findall(r'<input[^>]* name="(\w+)" type="checkbox"[^>]* checked', page.text):
        found[name] = "on"
    return found


def test_saving_a_policy_unchanged_keeps_its_reminders_and_escalation(admin, browser):
    admin.people.create_user("alice@example.com")
    admin.people.create_team("data-owners")
    admin.policies.create(
        "prod-promotion",
        approvers=["team:data-owners"],
        timeout="24h",
        reminders=["4h", "12h"],
        escalation={"after": "20h", "approvers": ["alice@example.com"]},
    )
    before = admin.policies.get("prod-promotion")
    shown = browser.get("/admin/policies/prod-promotion")
    assert "Reminds whoever has not decided after 4h, 12h." in text(shown)
    assert "Escalates after 20h to alice@example.com." in text(shown)
    assert "Escalates after 20h" in text(browser.get("/admin/policies"))
    edit = browser.get("/admin/policies/prod-promotion/edit")
    fields = form_fields(edit)
    assert (fields["reminders"], fields["escalation"]) == ("4h, 12h", "20h")
    assert fields["escalation_approvers"] == "alice@example.com"
    follow(browser, browser.post("/admin/policies/prod-promotion", data=fields))
    after = admin.policies.get("prod-promotion")
    assert after.reminders == before.reminders == [4 * 3600, 12 * 3600]
    assert after.escalation == before.escalation
    assert after.timeout_seconds == 24 * 3600

    changed = fields | {"reminders": "2h\n6h", "escalation": "", "escalation_approvers": ""}
    follow(browser, browser.post("/admin/policies/prod-promotion", data=changed))
    after = admin.policies.get("prod-promotion")
    assert (after.reminders, after.escalation) == ([2 * 3600, 6 * 3600], None)
    late = fields | {"escalation": "30h"}
    refused = browser.post("/admin/policies/prod-promotion", data=late)
    assert refused.status_code == 422
    assert 'id="f-escalation-error"' in refused.text
    nobody = fields | {"escalation_approvers": "nobody@example.com"}
    refused = browser.post("/admin/policies/prod-promotion", data=nobody)
    assert refused.status_code == 422
    assert 'id="f-escalation_approvers-error"' in refused.text


@pytest.mark.parametrize(
    "typed", ["NaN", '{"type": ["approval.settled"], "n": Infinity}', "[" * 100_000]
)
def test_json_boxes_refuse_nan_and_deep_nesting_beside_the_box(admin, browser, typed):
    admin.people.create_team("data-owners")
    form = browser.get("/admin/policies/_new")
    fields = {"name": "prod", "approvers": "team:data-owners", "quorum": "1"}
    refused = post(browser, "/admin/policies", form, **fields, rejections_to_reject="1", form=typed)
    assert refused.status_code == 422, refused.status_code
    assert 'id="f-form-error"' in refused.text
    assert "not JSON" in text(refused)
    form = browser.get("/admin/subscriptions/_new")
    fields = {"name": "ops", "kind": "webhook", "target": "https://hooks.example.com/T"}
    refused = post(browser, "/admin/subscriptions", form, **fields, enabled="on", filter=typed)
    assert refused.status_code == 422, refused.status_code
    assert 'id="f-filter-error"' in refused.text
    assert "not JSON" in text(refused)
    assert admin.policies.list().items == []
    assert admin.subscriptions.list().items == []


def test_a_subscription_filter_error_names_its_path_and_targets_stay_redacted(admin, browser):
    form = browser.get("/admin/subscriptions/_new")
    fields = {
        "name": "ops",
        "kind": "webhook",
        "target": "https://hooks.example.com/T0K3N",
        "enabled": "on",
    }
    typo = post(
        browser, "/admin/subscriptions", form, **fields, filter='{"type": ["approval.setled"]}'
    )
    assert typo.status_code == 422
    assert "filter.type[0]: 'approval.setled' is not an event type" in text(typo).lower()
    assert 'id="f-filter-error"' in typo.text
    listed = follow(
        browser,
        post(
            browser, "/admin/subscriptions", form, **fields, filter='{"type": ["approval.settled"]}'
        ),
    )
    assert "The subscription is created." in listed.text
    assert "T0K3N" not in listed.text
    edit = browser.get("/admin/subscriptions/ops")
    assert "T0K3N" not in edit.text
    kept = follow(
        browser,
        post(
            browser,
            "/admin/subscriptions/ops",
            edit,
            kind="webhook",
            target="",
            filter="{}",
            enabled="on",
        ),
    )
    assert "The subscription is saved." in kept.text
    saved = admin.subscriptions.get("ops")
    assert (saved.target, saved.filter) == ("https://hooks.example.com/T0K3N", {})
    follow(browser, post(browser, "/admin/subscriptions/ops/disable", kept))
    assert admin.subscriptions.get("ops").enabled is False
    confirm = browser.get("/admin/subscriptions/ops/delete")
    follow(browser, post(browser, "/admin/subscriptions/ops/delete", confirm))
    assert admin.subscriptions.list().items == []


def wait_until(check, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("the condition did not come true in time")


@pytest.mark.parametrize("settings_overrides", [{"delivery_max_age_seconds": 0.3}], indirect=True)
def test_a_dead_letter_is_redriven_once_its_receiver_listens(admin, browser):
    port = free_port()
    admin.subscriptions.create("ops", kind="webhook", target=f"http://127.0.0.1:{port}/hook")
    admin.approvals.create(title="Load", approvers=["ada@example.com"])
    dead = wait_until(lambda: admin.deliveries.list(status="dead", target_kind="webhook").items)
    listed = browser.get("/admin/deliveries?status=dead&kind=webhook")
    assert dead[0].id in listed.text
    assert f"127.0.0.1:{port}/…#" in listed.text  # the URL redacted
    detail = browser.get(f"/admin/deliveries/{dead[0].id}")
    assert "Connect" in detail.text or "refused" in detail.text.lower()
    with Receiver(port) as receiver:
        redriven = follow(browser, post(browser, f"/admin/deliveries/{dead[0].id}/redrive", detail))
        assert "is pending again" in redriven.text
        receiver.wait_for(1)
    wait_until(lambda: admin.deliveries.get(dead[0].id).status == "delivered")
    again = post(browser, f"/admin/deliveries/{dead[0].id}/redrive", detail)
    assert again.status_code == 409


@pytest.mark.parametrize("settings_overrides", [{"delivery_max_age_seconds": 0.3}], indirect=True)
def test_every_dead_letter_that_matches_is_redriven_after_a_confirmation(admin, browser):
    port = free_port()
    subscription = admin.subscriptions.create(
        "ops", kind="webhook", target=f"http://127.0.0.1:{port}/hook"
    )
    for title in ("One", "Two"):
        admin.approvals.create(title=title, approvers=["ada@example.com"])
    wait_until(lambda: len(admin.deliveries.list(status="dead", target_kind="webhook").items) == 2)
    confirm = browser.get(f"/admin/deliveries/redrive?subscription={subscription.id}")
    assert re.search(r"Dead deliveries</dt><dd>2<", confirm.text)
    with Receiver(port) as receiver:
        done = follow(
            browser,
            post(
                browser, "/admin/deliveries/redrive", confirm, subscription=subscription.id, kind=""
            ),
        )
        assert "2 dead deliveries are pending again" in done.text
        receiver.wait_for(2)


def test_the_audit_log_filters_pages_and_verifies_its_chain(admin, browser, db: Database):
    for name in ("a-team", "b-team", "c-team"):
        admin.people.create_team(name)
    log = browser.get("/admin/audit?action=team.create")
    assert log.text.count("<strong>team.create</strong>") == 3
    assert "a-team" in text(log)
    future = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    assert "No entries match" in browser.get(f"/admin/audit?since={future}").text
    assert 'id="f-since-error"' in browser.get("/admin/audit?since=yesterday").text
    for key, far in (("since", "0001-01-01T00:00+01:00"), ("until", "9999-12-31T23:59-01:00")):
        refused = browser.get("/admin/audit", params={key: far})
        assert refused.status_code in (200, 422), (key, refused.status_code)
        assert f'id="f-{key}-error"' in refused.text
    verified = post(browser, "/admin/audit/verify", log)
    assert "The chain is intact" in verified.text
    with db.write() as session:
        session.execute(update(AuditEntryRow).where(AuditEntryRow.seq == 2).values(actor="x"))
    broken = post(browser, "/admin/audit/verify", log)
    assert "The chain breaks at entry 2" in text(broken)


def admin_routes() -> list[tuple[str, str]]:
    """(method, path) of every admin page and form, path parameters filled in."""
    found = []
    for module in admin_pages.MODULES:
        for route in module.router.routes:
            assert isinstance(route, APIRoute)
            path = re.sub(r"\{[^}]+\}", "x", f"/admin{route.path}")
            found.extend((method, path) for method in sorted(route.methods - {"HEAD"}))
    return found


def test_every_admin_page_and_form_refuses_a_member_and_a_signed_out_visitor(server, admin):
    routes = admin_routes()
    assert len(routes) > 30
    teams_before = admin.people.list_teams()
    member = person(server, admin, "bob@example.com")
    home = member.get("/")
    stranger = httpx.Client(base_url=server.url, headers={"accept": "text/html"})
    for method, path in routes:
        if method == "GET":
            refused = member.get(path)
            assert refused.status_code == 403, (path, refused.status_code)
            assert "These pages are for admins." in refused.text
            sent_away = stranger.get(path)
        else:
            refused = post(member, path, home, name="sneaky", email="x@example.com", role="admin")
            assert refused.status_code == 403, (path, refused.status_code)
            sent_away = stranger.post(path, data={"name": "sneaky"})
        assert sent_away.status_code == 303, (path, sent_away.status_code)
        assert sent_away.headers["location"].startswith("/login?next=/admin")
    assert admin.people.list_teams() == teams_before
    assert [u.role for u in admin.people.list_users() if u.email == "bob@example.com"] == ["member"]
    member.close()
    stranger.close()


def test_every_admin_form_refuses_a_post_without_its_csrf_token_or_from_another_site(
    server, browser
):
    token = csrf(browser.get("/admin"))
    for method, path in admin_routes():
        if method == "POST":
            refused = browser.post(path, data={"name": "sneaky"})
            assert refused.status_code == 403, path
            assert "reload the page" in refused.text
            foreign = browser.post(
                path,
                data={"csrf_token": token, "name": "sneaky"},
                headers={"origin": "https://evil.example"},
            )
            assert foreign.status_code == 403, path


def test_what_does_not_exist_is_a_not_found_page(browser):
    for path in (
        "/admin/people/usr_nobody",
        "/admin/teams/nobody",
        "/admin/policies/nothing",
        "/admin/subscriptions/nothing",
        "/admin/deliveries/msg_nothing",
    ):
        missing = browser.get(path)
        assert missing.status_code == 404, path
        assert missing.headers["content-type"].startswith("text/html")
        assert "<h1>No such" in missing.text


def test_the_audit_log_pages_by_sequence_keeping_its_filters(admin, browser, db: Database):
    for number in range(55):
        factories.team(db, f"team-{number:02d}")
    first = browser.get("/admin/audit?action=team.create")
    assert first.text.count("<strong>team.create</strong>") == 50
    older = re.search(r'href="(/admin/audit\?[^"]+)">Older', first.text)
    assert older
    second = browser.get(html.unescape(older.group(1)))
    assert second.text.count("<strong>team.create</strong>") == 5
    assert "team-00" in second.text
    assert "team-54" not in second.text
    assert ">Older<" not in second.text
