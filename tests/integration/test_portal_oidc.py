"""Signing in to the portal with an identity provider, over real HTTP end to end: the
browser's redirects between signoff and the test provider, the sealed flow cookie, teams from
groups, and the refusals a person sees."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from signoff import Client
from tests.oidc_provider import OidcProvider


@pytest.fixture
def settings_overrides(oidc_provider: OidcProvider, request: pytest.FixtureRequest):
    extra = getattr(request, "param", {})
    return {
        "oidc_issuer": oidc_provider.issuer,
        "oidc_client_id": oidc_provider.client_id,
        "oidc_client_secret": oidc_provider.client_secret,
        "oidc_display_name": "Acme SSO",
    } | extra


@pytest.fixture
def browser(server, oidc_provider) -> Iterator[httpx.Client]:
    oidc_provider.redirect_uris.add(f"{server.url}/auth/oidc/callback")
    with httpx.Client(base_url=server.url, headers={"accept": "text/html"}) as client:
        yield client


def through_provider(browser: httpx.Client, next_url: str = "/") -> httpx.Response:
    """Press "Sign in with Acme SSO", let the provider sign in, land back on signoff."""
    started = browser.get("/auth/oidc/login", params={"next": next_url})
    assert started.status_code == 303, started.text
    at_provider = httpx.get(started.headers["location"])
    assert at_provider.status_code == 302, at_provider.text
    back = httpx.URL(at_provider.headers["location"])
    return browser.get(back.path, params=dict(back.params))


def test_the_sign_in_page_offers_the_provider(browser):
    assert "Sign in with Acme SSO" in browser.get("/login").text


@pytest.mark.parametrize("settings_overrides", [{"mfa_required": False}], indirect=True)
def test_a_person_signs_in_with_the_provider_and_joins_the_teams_of_their_groups(
    browser, oidc_provider, server
):
    oidc_provider.user.groups = ["data-owners"]
    landed = through_provider(browser, "/")
    assert landed.status_code == 303
    assert landed.headers["location"] == "/"
    assert "signoff_oidc=" in landed.headers.get("set-cookie", "")  # the flow cookie is cleared
    home = browser.get("/")
    assert home.status_code == 200
    assert "Alice Example" in home.text
    with Client(server.url, api_key=server.admin_key) as admin:
        teams = {t.name: t for t in admin.people.list_teams()}
        alice = next(u for u in admin.people.list_users() if u.email == "alice@example.com")
        assert alice.id in teams["data-owners"].member_ids
        actions = [e.action for e in admin.people.audit(object_id=alice.id).items]
        assert "auth.login" in actions


def test_with_mfa_required_the_provider_sign_in_still_asks_for_an_authenticator(browser):
    landed = through_provider(browser)
    assert landed.headers["location"] == "/account/mfa"
    assert browser.get("/").headers["location"] == "/account/mfa"


def test_a_callback_without_the_flow_cookie_is_refused(browser, oidc_provider):
    started = browser.get("/auth/oidc/login")
    at_provider = httpx.get(started.headers["location"])
    back = httpx.URL(at_provider.headers["location"])
    with httpx.Client(base_url=browser.base_url, headers={"accept": "text/html"}) as stranger:
        answer = stranger.get(back.path, params=dict(back.params))
    assert answer.status_code == 401
    assert "start again" in answer.text


def test_a_forged_state_is_refused(browser):
    started = browser.get("/auth/oidc/login")
    at_provider = httpx.get(started.headers["location"])
    back = httpx.URL(at_provider.headers["location"])
    params = dict(back.params) | {"state": "forged"}
    answer = browser.get(back.path, params=params)
    assert answer.status_code == 401
    assert "Sign in" in answer.text


@pytest.mark.parametrize(
    "settings_overrides",
    [{"oidc_allowed_groups": "approvers", "mfa_required": False}],
    indirect=True,
)
def test_people_outside_the_allowed_groups_are_refused(browser, oidc_provider):
    oidc_provider.user.groups = ["contractors"]
    answer = through_provider(browser)
    assert answer.status_code == 403
    assert "none of the groups" in answer.text
