"""Every route checks permissions on the server. The table below names, for each route the
API documents, what a member of *another* team gets; a route added without a row here fails
``test_every_route_has_a_permission_row``, so none can ship unchecked."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest

from tests.conftest import RunningServer


@dataclass
class World:
    admin: httpx.Client
    alice: httpx.Client  # member of team-a, an approver of the approval
    bob: httpx.Client  # member of team-b only
    anonymous: httpx.Client
    ids: dict[str, str]


@pytest.fixture
def world(server: RunningServer) -> World:
    def client(key: str | None) -> httpx.Client:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=server.url, headers=headers)

    admin = client(server.admin_key)
    keys = {}
    for team, email in (("team-a", "alice@example.com"), ("team-b", "bob@example.com")):
        admin.post("/v1/teams", json={"name": team}).raise_for_status()
        admin.post("/v1/users", json={"email": email}).raise_for_status()
        admin.post(f"/v1/teams/{team}/members", json={"user": email}).raise_for_status()
        keys[email] = admin.post("/v1/api-keys", json={"user": email}).json()
    approval = admin.post(
        "/v1/approvals", json={"title": "Ship it?", "approvers": ["team:team-a"]}
    ).json()
    invitation = admin.post("/v1/invitations", json={"email": "eve@example.com"}).json()
    admin.post(
        "/v1/policies", json={"name": "team-a-rules", "approvers": ["team:team-a"]}
    ).raise_for_status()
    admin.post(  # the same name: {name} stands for both in the rows below
        "/v1/subscriptions",
        json={"name": "team-a-rules", "kind": "slack", "target": "#team-a"},
    ).raise_for_status()
    ids = {
        "approval_id": approval["id"],
        "invitation_id": invitation["id"],
        "key_id": keys["alice@example.com"]["id"],
        "user": "alice@example.com",
        "team": "team-a",
        "name": "team-a-rules",
        "delivery_id": "msg_0000000000000000000000000a",
    }
    return World(
        admin=admin,
        alice=client(keys["alice@example.com"]["key"]),
        bob=client(keys["bob@example.com"]["key"]),
        anonymous=client(None),
        ids=ids,
    )


APPROVAL = {"title": "Mine?", "approvers": ["team:team-b"]}
SLACK = {"kind": "slack", "target": "#team-b"}
# (method, path template, body, status for bob, problem code for bob or None)
ROWS = [
    ("POST", "/v1/approvals", APPROVAL, 201, None),
    ("GET", "/v1/approvals", None, 200, None),
    ("GET", "/v1/approvals/{approval_id}", None, 404, "approval_not_found"),
    (
        "POST",
        "/v1/approvals/{approval_id}/decisions",
        {"verdict": "approve"},
        404,
        "approval_not_found",
    ),
    ("POST", "/v1/approvals/{approval_id}/cancel", {}, 404, "approval_not_found"),
    ("POST", "/v1/approvals/{approval_id}/heartbeat", None, 404, "approval_not_found"),
    ("GET", "/v1/approvals/{approval_id}/wait", None, 404, "approval_not_found"),
    ("GET", "/v1/approvals/{approval_id}/deliveries", None, 404, "approval_not_found"),
    ("POST", "/v1/policies", {"name": "p", "approvers": ["team:team-b"]}, 403, "permission_denied"),
    ("GET", "/v1/policies", None, 200, None),  # a requester must know what a name stands for
    ("GET", "/v1/policies/{name}", None, 200, None),
    ("PUT", "/v1/policies/{name}", {"approvers": ["team:team-b"]}, 403, "permission_denied"),
    ("DELETE", "/v1/policies/{name}", None, 403, "permission_denied"),
    ("POST", "/v1/subscriptions", {"name": "s", **SLACK}, 403, "permission_denied"),
    ("GET", "/v1/subscriptions", None, 403, "permission_denied"),  # targets may hold tokens
    ("GET", "/v1/subscriptions/{name}", None, 403, "permission_denied"),
    ("PUT", "/v1/subscriptions/{name}", SLACK, 403, "permission_denied"),
    ("PATCH", "/v1/subscriptions/{name}", {"enabled": False}, 403, "permission_denied"),
    ("DELETE", "/v1/subscriptions/{name}", None, 403, "permission_denied"),
    ("GET", "/v1/users", None, 403, "permission_denied"),
    ("POST", "/v1/users", {"email": "mallory@example.com"}, 403, "permission_denied"),
    ("GET", "/v1/users/me", None, 200, None),
    ("PATCH", "/v1/users/{user}", {"role": "admin"}, 403, "permission_denied"),
    ("DELETE", "/v1/users/{user}/oidc", None, 403, "permission_denied"),
    ("GET", "/v1/users/{user}/slack", None, 403, "permission_denied"),
    ("PUT", "/v1/users/{user}/slack", {"slack_user_id": "U0BOB0001"}, 403, "permission_denied"),
    ("DELETE", "/v1/users/{user}/slack", None, 403, "permission_denied"),
    ("GET", "/v1/invitations", None, 403, "permission_denied"),
    ("POST", "/v1/invitations", {"email": "m@example.com"}, 403, "permission_denied"),
    ("POST", "/v1/invitations/{invitation_id}/resend", None, 403, "permission_denied"),
    ("POST", "/v1/invitations/{invitation_id}/revoke", None, 403, "permission_denied"),
    ("GET", "/v1/teams", None, 200, None),
    ("POST", "/v1/teams", {"name": "team-c"}, 403, "permission_denied"),
    ("POST", "/v1/teams/{team}/members", {"user": "bob@example.com"}, 403, "permission_denied"),
    ("DELETE", "/v1/teams/{team}/members/{user}", None, 403, "permission_denied"),
    ("DELETE", "/v1/teams/{team}", None, 403, "permission_denied"),
    ("GET", "/v1/api-keys", None, 200, None),
    ("POST", "/v1/api-keys", {"user": "alice@example.com"}, 403, "permission_denied"),
    ("POST", "/v1/api-keys/{key_id}/revoke", None, 404, "api_key_not_found"),
    ("GET", "/v1/deliveries", None, 403, "permission_denied"),
    ("GET", "/v1/deliveries/{delivery_id}", None, 403, "permission_denied"),
    ("POST", "/v1/deliveries/{delivery_id}/redrive", None, 403, "permission_denied"),
    ("POST", "/v1/deliveries/redrive", {}, 403, "permission_denied"),
    ("GET", "/v1/audit", None, 403, "permission_denied"),
    ("GET", "/v1/audit/verify", None, 403, "permission_denied"),
    ("GET", "/v1/webhook-secret", None, 403, "permission_denied"),
    ("GET", "/healthz", None, 200, None),
    # No credentials, from SIGNOFF_METRICS_ALLOWED_NETWORKS only: empty here, so closed.
    ("GET", "/metrics", None, 403, "address_not_allowed"),
]
OPEN = {("GET", "/healthz")}
BY_NETWORK = {("GET", "/metrics")}


def _call(client: httpx.Client, method: str, path: str, body: object, ids: dict[str, str]):
    return client.request(method, path.format(**ids), json=body)


def test_every_route_has_a_permission_row(server: RunningServer):
    documented = httpx.get(f"{server.url}/openapi.json").json()["paths"]
    routes = {(method.upper(), path) for path, ops in documented.items() for method in ops}
    assert routes == {(method, path) for method, path, *_ in ROWS}


def test_a_member_of_another_team_gets_only_what_is_theirs(world: World):
    """One server for every row (a server per row would take a minute); every mismatch is
    reported together."""
    wrong = []
    for method, path, body, status, code in ROWS:
        answer = _call(world.bob, method, path, body, world.ids)
        got_code = answer.json().get("code") if answer.status_code >= 400 else None
        if answer.status_code != status or (code is not None and got_code != code):
            wrong.append(f"{method} {path}: {answer.status_code} {got_code}, want {status} {code}")
    assert wrong == []


def test_without_credentials_everything_but_health_and_metrics_is_401(world: World):
    wrong = []
    for method, path, body, *_ in ROWS:
        answer = _call(world.anonymous, method, path, body, world.ids)
        route = (method, path)
        expected = 200 if route in OPEN else 403 if route in BY_NETWORK else 401
        if answer.status_code != expected:
            wrong.append(f"{method} {path}: {answer.status_code}, want {expected}")
    assert wrong == []


def test_listings_show_a_member_only_their_own_approvals_and_keys(world: World):
    assert world.ids["approval_id"] not in {
        a["id"] for a in world.bob.get("/v1/approvals").json()["items"]
    }
    assert world.ids["approval_id"] in {
        a["id"] for a in world.alice.get("/v1/approvals").json()["items"]
    }
    mine = world.bob.get("/v1/api-keys").json()
    assert len(mine) == 1
    assert world.ids["key_id"] not in {k["id"] for k in mine}


def test_an_approver_decides_what_another_team_member_cannot(world: World):
    path = f"/v1/approvals/{world.ids['approval_id']}/decisions"
    assert world.bob.post(path, json={"verdict": "approve"}).status_code == 404
    assert world.alice.post(path, json={"verdict": "approve"}).status_code == 200
