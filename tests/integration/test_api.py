"""The /v1 API over real HTTP: status codes, problem+json bodies, tokens, long polls."""

from __future__ import annotations

import base64
import json
import threading
import time
from datetime import UTC, datetime

import httpx
import pytest

from signoff.store import principals as principals_store
from tests.conftest import RunningServer


@pytest.fixture
def api(server: RunningServer) -> dict[str, httpx.Client]:
    """Clients for an admin, a pipeline (requester) and an approver."""
    admin = httpx.Client(
        base_url=server.url, headers={"authorization": f"Bearer {server.admin_key}"}
    )
    keys = {}
    for email in ("pipeline@example.com", "alice@example.com", "carol@example.com"):
        admin.post("/v1/users", json={"email": email}).raise_for_status()
        keys[email.split("@")[0]] = admin.post("/v1/api-keys", json={"user": email}).json()["key"]
    clients = {"admin": admin}
    for name, key in keys.items():
        clients[name] = httpx.Client(
            base_url=server.url, headers={"authorization": f"Bearer {key}"}
        )
    return clients


def create(client: httpx.Client, **fields: object) -> httpx.Response:
    body = {"title": "Apply batch 42?", "approvers": ["alice@example.com"]} | fields
    return client.post("/v1/approvals", json=body)


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == code
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    return body


def test_create_answers_201_with_id_url_deadline_and_token(api):
    response = create(api["pipeline"], timeout="2h")
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "pending"
    assert body["url"].endswith(f"/approvals/{body['id']}")
    assert body["token"].startswith("sot_")
    assert body["deadline_at"] > body["created_at"]


def test_idempotency_key_replays_with_200_and_conflicts_on_another_body(api):
    headers = {"Idempotency-Key": "nightly-2026-11-22"}
    first = api["pipeline"].post(
        "/v1/approvals", json={"title": "t", "approvers": ["alice@example.com"]}, headers=headers
    )
    again = api["pipeline"].post(
        "/v1/approvals", json={"title": "t", "approvers": ["alice@example.com"]}, headers=headers
    )
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["token"] == first.json()["token"]
    other = api["pipeline"].post(
        "/v1/approvals", json={"title": "u", "approvers": ["alice@example.com"]}, headers=headers
    )
    assert_problem(other, 409, "idempotency_conflict")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"title": "x" * 201}, "title"),
        ({"title": ""}, "title"),
        ({"approvers": []}, "approvers"),
        ({"on_timeout": "maybe"}, "on_timeout"),
        ({"callback_url": "not a url"}, "callback_url"),
        ({"callback_url": "https://example.com/" + "x" * 2048}, "callback_url"),
        ({"labels": ["x" * 101]}, "labels"),
        ({"labels": [""]}, "labels"),
        ({"body": "x" * (64 * 1024 + 1)}, "body"),
        ({"context": {"blob": "x" * (256 * 1024)}}, "context"),
        ({"timeout": "2y"}, "timeout"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_input_is_a_422_problem_naming_the_field(api, fields, field):
    body = assert_problem(create(api["pipeline"], **fields), 422, "invalid_input")
    assert field in str(body)


def test_an_oversized_body_is_refused_before_parsing(api):
    response = api["pipeline"].post(
        "/v1/approvals",
        content=b"{" + b" " * (2 * 1024 * 1024) + b"}",
        headers={"content-type": "application/json"},
    )
    assert_problem(response, 413, "payload_too_large")


def test_an_oversized_chunked_body_is_refused_while_reading(api):
    chunks = (b" " * 65536 for _ in range(40))
    response = api["pipeline"].post(
        "/v1/approvals", content=chunks, headers={"content-type": "application/json"}
    )
    assert_problem(response, 413, "payload_too_large")


def test_a_body_that_is_not_json_is_a_problem(api):
    response = api["pipeline"].post(
        "/v1/approvals", content=b"{oops", headers={"content-type": "application/json"}
    )
    body = assert_problem(response, 422, "invalid_input")
    assert [e["field"] for e in body["errors"]] == [""]  # the body as a whole, not a position
    assert str(body["detail"]).startswith("body: JSON decode error")


def test_a_wrong_method_is_a_problem_that_names_every_allowed_method(api):
    refused = api["pipeline"].delete("/v1/approvals")
    assert_problem(refused, 405, "method_not_allowed")
    assert refused.headers["allow"] == "GET, POST"
    docs = api["admin"].post("/openapi.json")  # not an API path: Starlette's Allow stays
    assert docs.status_code == 405
    assert set(docs.headers["allow"].split(", ")) == {"GET", "HEAD"}


def test_unknown_approver_is_a_problem(api):
    assert_problem(create(api["pipeline"], approvers=["team:ghosts"]), 422, "unknown_approver")


def test_missing_and_wrong_credentials_are_401(server):
    assert_problem(httpx.get(f"{server.url}/v1/approvals"), 401, "unauthenticated")
    wrong = httpx.get(f"{server.url}/v1/approvals", headers={"authorization": "Bearer sok_nope"})
    assert_problem(wrong, 401, "unauthenticated")
    forged = httpx.get(
        f"{server.url}/v1/approvals/ap_x", headers={"authorization": "Bearer sot_ap_x.00"}
    )
    assert_problem(forged, 401, "unauthenticated")


def test_unknown_routes_and_ids_are_404_problems(api):
    assert_problem(api["admin"].get("/v1/nothing-here"), 404, "not_found")
    assert_problem(api["admin"].get("/v1/approvals/ap_missing"), 404, "approval_not_found")


def test_decisions_follow_the_policy_and_late_ones_get_already_decided(api):
    approval = create(api["pipeline"]).json()
    path = f"/v1/approvals/{approval['id']}/decisions"
    assert_problem(
        api["pipeline"].post(path, json={"verdict": "approve"}), 403, "requester_cannot_decide"
    )
    # carol is neither an approver nor the requester: to her the approval does not exist
    assert_problem(api["carol"].post(path, json={"verdict": "approve"}), 404, "approval_not_found")
    assert_problem(
        api["carol"].post(f"/v1/approvals/{approval['id']}/cancel"), 404, "approval_not_found"
    )
    decided = api["alice"].post(path, json={"verdict": "reject", "comment": "too many"})
    assert decided.status_code == 200
    assert decided.json()["status"] == "rejected"
    late = assert_problem(
        api["admin"].post(path, json={"verdict": "approve"}), 409, "already_decided"
    )
    assert late["outcome"]["status"] == "rejected"


def test_form_errors_are_reported_per_field(api):
    form = {"type": "object", "required": ["ticket"], "properties": {"ticket": {"type": "string"}}}
    approval = create(api["pipeline"], policy={"form": form}).json()
    response = api["alice"].post(
        f"/v1/approvals/{approval['id']}/decisions", json={"verdict": "approve", "form": {}}
    )
    body = assert_problem(response, 422, "invalid_form")
    assert body["errors"] == [{"field": "", "message": "'ticket' is a required property"}]


def test_the_task_token_reads_heartbeats_and_cancels_but_lists_and_decides_nothing(api, server):
    approval = create(api["pipeline"], heartbeat_timeout="5m").json()
    token = httpx.Client(
        base_url=server.url, headers={"authorization": f"Bearer {approval['token']}"}
    )
    assert token.get(f"/v1/approvals/{approval['id']}").json()["status"] == "pending"
    assert token.post(f"/v1/approvals/{approval['id']}/heartbeat").status_code == 200
    assert_problem(token.get("/v1/approvals"), 403, "permission_denied")
    decision = token.post(f"/v1/approvals/{approval['id']}/decisions", json={"verdict": "approve"})
    assert_problem(decision, 403, "permission_denied")
    canceled = token.post(f"/v1/approvals/{approval['id']}/cancel", json={"reason": "job killed"})
    assert canceled.json()["status"] == "canceled"
    assert_problem(token.post(f"/v1/approvals/{approval['id']}/heartbeat"), 409, "already_settled")


def test_wait_returns_as_soon_as_the_approval_settles(api):
    approval = create(api["pipeline"]).json()
    answers: list[httpx.Response] = []
    waiting = threading.Thread(
        target=lambda: answers.append(
            api["pipeline"].get(
                f"/v1/approvals/{approval['id']}/wait", params={"timeout": 30}, timeout=40
            )
        )
    )
    waiting.start()
    _until_waiting(api["admin"], 1)
    api["alice"].post(
        f"/v1/approvals/{approval['id']}/decisions", json={"verdict": "approve"}
    ).raise_for_status()
    waiting.join(timeout=10)
    assert not waiting.is_alive(), "the waiter was not woken by the decision"
    assert answers[0].json()["status"] == "approved"


def test_wait_times_out_with_the_approval_still_pending(api):
    approval = create(api["pipeline"]).json()
    response = api["pipeline"].get(f"/v1/approvals/{approval['id']}/wait", params={"timeout": 0.2})
    assert response.json()["status"] == "pending"


def test_wait_on_a_settled_approval_answers_at_once(api):
    approval = create(api["pipeline"]).json()
    api["alice"].post(f"/v1/approvals/{approval['id']}/decisions", json={"verdict": "approve"})
    response = api["pipeline"].get(
        f"/v1/approvals/{approval['id']}/wait", params={"timeout": 60}, timeout=5
    )
    assert response.json()["status"] == "approved"


def test_listing_filters_and_pages(api):
    ids = [create(api["pipeline"], labels=["nightly"]).json()["id"] for _ in range(3)]
    create(api["pipeline"])
    first = api["pipeline"].get("/v1/approvals", params={"label": "nightly", "limit": 2}).json()
    second = (
        api["pipeline"]
        .get(
            "/v1/approvals", params={"label": "nightly", "limit": 2, "cursor": first["next_cursor"]}
        )
        .json()
    )
    assert [a["id"] for a in first["items"] + second["items"]] == ids[::-1]
    assert second["next_cursor"] is None
    mine = api["alice"].get("/v1/approvals", params={"decidable": "true"}).json()
    assert len(mine["items"]) == 4


@pytest.mark.parametrize(
    "moment",
    ["2026-01-01T00:00:00", "0001-01-01T00:00:00+01:00", "not a moment", None],
    ids=["without-time-zone", "out-of-range", "not-a-moment", "null"],
)
def test_a_tampered_listing_cursor_is_a_422_problem(api, moment):
    create(api["pipeline"])
    for decoded in ([moment, "x"], [moment], {"a": 1}):
        raw = json.dumps(decoded).encode()
        cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        answer = api["admin"].get("/v1/approvals", params={"cursor": cursor})
        assert assert_problem(answer, 422, "invalid_input")


def test_audit_is_admin_only_and_verifies(api):
    create(api["pipeline"])
    assert_problem(api["pipeline"].get("/v1/audit"), 403, "permission_denied")
    entries = api["admin"].get("/v1/audit", params={"action": "approval.create"}).json()["items"]
    assert entries[0]["actor"].startswith("user:")
    assert entries[0]["client_addr"] == "127.0.0.1"
    assert entries[0]["request_id"]
    everything = api["admin"].get("/v1/audit", params={"limit": 1000}).json()["items"]
    verified = api["admin"].get("/v1/audit/verify").json()
    assert verified == {"ok": True, "checked": len(everything), "first_break": None}
    assert [e["seq"] for e in everything] == list(range(len(everything), 0, -1))


def test_request_ids_are_echoed_and_recorded(api):
    response = api["pipeline"].post(
        "/v1/approvals",
        json={"title": "t", "approvers": ["alice@example.com"]},
        headers={"x-request-id": "trace-123"},
    )
    assert response.headers["x-request-id"] == "trace-123"
    entry = (
        api["admin"]
        .get("/v1/audit", params={"object_id": response.json()["id"]})
        .json()["items"][0]
    )
    assert entry["request_id"] == "trace-123"


def test_openapi_describes_the_api(server):
    spec = httpx.get(f"{server.url}/openapi.json").json()
    assert "/v1/approvals/{approval_id}/wait" in spec["paths"]
    assert "ApprovalCreate" in spec["components"]["schemas"]
    # errors are documented as they are sent: problem+json with a code
    create = spec["paths"]["/v1/approvals"]["post"]["responses"]
    for status in ("401", "409", "422", "503"):
        assert list(create[status]["content"]) == ["application/problem+json"]
    assert "code" in spec["components"]["schemas"]["Problem"]["required"]
    assert "HTTPValidationError" not in spec["components"]["schemas"]


def _until_waiting(admin: httpx.Client, count: int) -> None:
    for _ in range(200):
        if admin.get("/healthz").json()["waiters"] >= count:
            return
        threading.Event().wait(0.02)
    raise AssertionError("nobody started waiting")


def test_a_revoked_key_is_refused_on_its_next_request(api):
    # The server remembers keys for a few seconds; a revocation must still apply at once.
    alice = api["alice"]
    (key,) = alice.get("/v1/api-keys").json()
    api["admin"].post(f"/v1/api-keys/{key['id']}/revoke").raise_for_status()
    assert_problem(alice.get("/v1/approvals"), 401, "unauthenticated")


@pytest.mark.parametrize("settings_overrides", [{"auth_cache_seconds": 0.5}], indirect=True)
def test_a_key_revoked_behind_the_servers_back_is_refused_after_the_cache_time(api, db):
    # As an admin command on the SQLite file from another process would: no notification
    # reaches the server (on PostgreSQL it does, and the refusal comes sooner).
    alice = api["alice"]
    (key,) = alice.get("/v1/api-keys").json()
    with db.write() as session:
        principals_store.revoke_api_key(session, key["id"], datetime.now(UTC))
    time.sleep(0.7)
    assert_problem(alice.get("/v1/approvals"), 401, "unauthenticated")


@pytest.mark.parametrize(
    "settings_overrides", [{"allowed_networks": ["10.0.0.0/8", "fd00::/8"]}], indirect=True
)
def test_clients_outside_the_allowed_networks_are_refused_before_anything_else(server):
    admin = {"authorization": f"Bearer {server.admin_key}"}
    for method, path in (("GET", "/v1/approvals"), ("POST", "/v1/approvals"), ("GET", "/nope")):
        refused = httpx.request(method, server.url + path, headers=admin, json={})
        body = assert_problem(refused, 403, "address_not_allowed")
        assert "allowed networks" in str(body["detail"])
    assert httpx.get(f"{server.url}/healthz").status_code == 200  # load balancers still see it


@pytest.mark.parametrize(
    "settings_overrides", [{"allowed_networks": ["10.0.0.0/8", "127.0.0.0/8"]}], indirect=True
)
def test_clients_inside_an_allowed_network_are_served(server):
    admin = {"authorization": f"Bearer {server.admin_key}"}
    assert httpx.get(f"{server.url}/v1/approvals", headers=admin).status_code == 200


def test_keys_carry_scopes_and_an_expiry_and_a_narrow_key_cannot_decide(api, server):
    approval = create(api["pipeline"]).json()
    made = api["alice"].post(
        "/v1/api-keys",
        json={"name": "dashboard", "scopes": ["approvals:read"], "expires_in": "30d"},
    )
    assert made.status_code == 201, made.text
    key = made.json()
    assert key["scopes"] == ["approvals:read"]
    assert key["expires_at"] is not None
    narrow = httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {key['key']}"})
    assert narrow.get(f"/v1/approvals/{approval['id']}").status_code == 200
    refused = narrow.post(f"/v1/approvals/{approval['id']}/decisions", json={"verdict": "approve"})
    assert assert_problem(refused, 403, "insufficient_scope")["scope"] == "approvals:decide"
    listed = {k["id"]: k for k in api["alice"].get("/v1/api-keys").json()}
    assert listed[key["id"]]["scopes"] == ["approvals:read"]
    assert sorted(listed[key["id"]]) == sorted(k for k in key if k != "key")
    bad = api["alice"].post("/v1/api-keys", json={"scopes": ["everything"]})
    assert assert_problem(bad, 422, "invalid_input")["errors"][0]["field"].startswith("scopes")
    too_much = api["alice"].post("/v1/api-keys", json={"scopes": ["admin"]})
    assert_problem(too_much, 422, "invalid_input")
