"""Named policies over real HTTP, through the raw API and the SDK: who may write and read them,
and approvals that name one."""

from __future__ import annotations

import asyncio

import httpx
import pytest

import signoff
from signoff import errors
from tests.conftest import RunningServer

PROD_PROMOTION = {
    "name": "prod-promotion",
    "description": "Two approvals from the prod approvers; never the author.",
    "approvers": ["team:model-approvers-prod"],
    "quorum": 2,
    "comment_required": True,
}


@pytest.fixture
def keys(server: RunningServer) -> dict[str, str]:
    """API keys of an admin, a pipeline, two prod approvers, and a pipeline key that may only
    create approvals (``writer``)."""
    admin = signoff.Client(server.url, server.admin_key)
    admin.people.create_team("model-approvers-prod")
    for name in ("pipeline", "alice", "bob"):
        admin.people.create_user(f"{name}@example.com")
    for name in ("alice", "bob"):
        admin.people.add_member("model-approvers-prod", f"{name}@example.com")
    made = {
        name: admin.people.create_key(user=f"{name}@example.com").key
        for name in ("pipeline", "alice", "bob")
    }
    made["writer"] = admin.people.create_key(
        user="pipeline@example.com", scopes=["approvals:write"]
    ).key
    return made | {"admin": server.admin_key}


@pytest.fixture
def api(server: RunningServer, keys: dict[str, str]) -> dict[str, httpx.Client]:
    return {
        name: httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {key}"})
        for name, key in keys.items()
    }


@pytest.fixture
def sdk(server: RunningServer, keys: dict[str, str]) -> dict[str, signoff.Client]:
    return {name: signoff.Client(server.url, key) for name, key in keys.items()}


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == code
    return body


def by_name(client: httpx.Client, **fields: object) -> httpx.Response:
    return client.post(
        "/v1/approvals", json={"title": "Promote v7?", "policy": "prod-promotion"} | fields
    )


def test_an_admin_creates_reads_lists_replaces_and_deletes_a_policy(api):
    created = api["admin"].post("/v1/policies", json=PROD_PROMOTION)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["id"].startswith("pol_")
    assert body["approvers"] == [
        {"kind": "team", "id": body["approvers"][0]["id"], "name": "model-approvers-prod"}
    ]
    assert (body["quorum"], body["comment_required"], body["requester_can_decide"]) == (
        2,
        True,
        False,
    )
    assert (body["timeout_seconds"], body["on_timeout"]) == (None, None)
    assert api["pipeline"].get("/v1/policies/prod-promotion").json() == body
    listed = api["pipeline"].get("/v1/policies").json()
    assert (listed["items"], listed["next_cursor"]) == ([body], None)
    replaced = api["admin"].put(
        "/v1/policies/prod-promotion",
        json={"approvers": ["alice@example.com"], "timeout": "4h", "on_timeout": "expire"},
    )
    assert replaced.status_code == 200, replaced.text
    after = replaced.json()
    assert (after["id"], after["created_at"]) == (body["id"], body["created_at"])
    assert (after["quorum"], after["comment_required"], after["description"]) == (1, False, "")
    assert (after["timeout_seconds"], after["on_timeout"]) == (4 * 3600, "expire")
    deleted = api["admin"].delete("/v1/policies/prod-promotion")
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert_problem(api["admin"].get("/v1/policies/prod-promotion"), 404, "policy_not_found")
    assert_problem(api["admin"].delete("/v1/policies/prod-promotion"), 404, "policy_not_found")
    put_missing = api["admin"].put("/v1/policies/nope", json={"approvers": ["alice@example.com"]})
    assert_problem(put_missing, 404, "policy_not_found")


def test_only_admins_write_policies_and_reading_needs_approvals_read(api, server):
    assert_problem(
        api["pipeline"].post("/v1/policies", json=PROD_PROMOTION), 403, "permission_denied"
    )
    api["admin"].post("/v1/policies", json=PROD_PROMOTION).raise_for_status()
    change = {"approvers": ["pipeline@example.com"], "requester_can_decide": True}
    assert_problem(
        api["pipeline"].put("/v1/policies/prod-promotion", json=change), 403, "permission_denied"
    )
    assert_problem(api["pipeline"].delete("/v1/policies/prod-promotion"), 403, "permission_denied")
    refused = assert_problem(
        api["writer"].get("/v1/policies/prod-promotion"), 403, "insufficient_scope"
    )
    assert refused["scope"] == "approvals:read"
    assert_problem(api["writer"].get("/v1/policies"), 403, "insufficient_scope")
    token = by_name(api["pipeline"]).json()["token"]
    as_token = httpx.get(
        f"{server.url}/v1/policies/prod-promotion", headers={"authorization": f"Bearer {token}"}
    )
    assert_problem(as_token, 403, "permission_denied")
    assert api["pipeline"].get("/v1/policies/prod-promotion").json()["quorum"] == 2


@pytest.mark.parametrize(
    ("change", "status", "code", "field"),
    [
        ({"name": "Prod Promotion"}, 422, "invalid_input", "name"),
        ({"name": "x" * 101}, 422, "invalid_input", "name"),
        ({"approvers": []}, 422, "invalid_input", "approvers"),
        ({"quorum": 0}, 422, "invalid_input", "quorum"),
        ({"timeout": "soon"}, 422, "invalid_input", "timeout"),
        ({"on_timeout": "maybe"}, 422, "invalid_input", "on_timeout"),
        ({"form": {"type": "no-such-type"}}, 422, "invalid_input", "JSON Schema"),
        ({"surprise": 1}, 422, "invalid_input", "surprise"),
        ({"approvers": ["team:ghosts"]}, 422, "unknown_approver", "team:ghosts"),
        ({"reminders": ["4h", "2h"]}, 422, "invalid_input", "reminders"),
        ({"timeout": "3h", "reminders": ["4h"]}, 422, "invalid_input", "reminders"),
        (
            {"timeout": "3h", "escalation": {"after": "3h", "approvers": ["team:x"]}},
            422,
            "unknown_approver",
            "team:x",
        ),
        (
            {"timeout": "3h", "escalation": {"after": "3h", "approvers": ["alice@example.com"]}},
            422,
            "invalid_input",
            "escalation.after",
        ),
    ],
)
def test_a_bad_policy_is_a_problem_naming_what_is_wrong(api, change, status, code, field):
    body = assert_problem(
        api["admin"].post("/v1/policies", json=PROD_PROMOTION | change), status, code
    )
    assert field in str(body)


def test_a_taken_name_is_a_conflict(api):
    api["admin"].post("/v1/policies", json=PROD_PROMOTION).raise_for_status()
    again = api["admin"].post("/v1/policies", json=PROD_PROMOTION | {"quorum": 1})
    assert_problem(again, 409, "duplicate_name")


def test_an_approval_by_name_takes_the_policy_and_keeps_it_after_an_edit(api):
    api["admin"].post("/v1/policies", json=PROD_PROMOTION).raise_for_status()
    created = by_name(api["pipeline"])
    assert created.status_code == 201, created.text
    approval = created.json()
    assert [a["name"] for a in approval["approvers"]] == ["model-approvers-prod"]
    assert approval["policy"] | {"form": None} == {
        "name": "prod-promotion",
        "quorum": 2,
        "rejections_to_reject": 1,
        "requester_can_decide": False,
        "comment_required": True,
        "form": None,
        "link_requires_login": False,
    }
    looser = {"approvers": ["pipeline@example.com"], "requester_can_decide": True}
    api["admin"].put("/v1/policies/prod-promotion", json=looser).raise_for_status()
    path = f"/v1/approvals/{approval['id']}"
    assert api["pipeline"].get(path).json()["policy"] == approval["policy"]
    assert_problem(
        api["pipeline"].post(f"{path}/decisions", json={"verdict": "approve", "comment": "me"}),
        403,
        "requester_cannot_decide",
    )
    no_comment = api["alice"].post(f"{path}/decisions", json={"verdict": "approve"})
    assert_problem(no_comment, 422, "comment_required")
    for name in ("alice", "bob"):
        decided = api[name].post(f"{path}/decisions", json={"verdict": "approve", "comment": "ok"})
    assert decided.json()["status"] == "approved"
    fresh = by_name(api["pipeline"]).json()
    assert [a["name"] for a in fresh["approvers"]] == ["pipeline@example.com"]


def test_an_unknown_policy_name_is_422_unknown_policy(api):
    body = assert_problem(by_name(api["pipeline"]), 422, "unknown_policy")
    assert body["policy"] == "prod-promotion"
    assert "'prod-promotion'" in str(body["detail"])


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"approvers": ["alice@example.com"]}, "approvers"),
        ({"timeout": "7d"}, "timeout"),
        ({"on_timeout": "approve"}, "on_timeout"),
        ({"reminders": ["10m"]}, "reminders"),
        ({"escalation": {"after": "30m", "approvers": ["bob@example.com"]}}, "escalation"),
    ],
)
def test_a_request_cannot_change_what_a_named_policy_fixes(api, fields, field):
    fixed = PROD_PROMOTION | {"timeout": "1h", "on_timeout": "reject", "reminders": ["20m"]}
    api["admin"].post("/v1/policies", json=fixed).raise_for_status()
    body = assert_problem(by_name(api["pipeline"], **fields), 422, "invalid_input")
    assert body["field"] == field
    assert "prod-promotion" in str(body["detail"])
    assert by_name(api["pipeline"], timeout=3600, on_timeout="reject").status_code == 201


def test_an_inline_approval_without_approvers_is_422_naming_approvers(api):
    response = api["pipeline"].post("/v1/approvals", json={"title": "t", "policy": {"quorum": 1}})
    assert assert_problem(response, 422, "invalid_input")["field"] == "approvers"


def test_openapi_describes_policies_and_approvals_that_name_them(server):
    spec = httpx.get(f"{server.url}/openapi.json").json()
    assert set(spec["paths"]["/v1/policies"]) == {"get", "post"}
    assert set(spec["paths"]["/v1/policies/{name}"]) == {"get", "put", "delete"}
    policy = spec["components"]["schemas"]["ApprovalCreate"]["properties"]["policy"]
    assert {"$ref": "#/components/schemas/PolicySpec"} in policy["anyOf"]
    assert "approvers" not in spec["components"]["schemas"]["ApprovalCreate"]["required"]


def test_the_sdk_manages_policies_and_creates_approvals_by_name(sdk):
    admin, pipeline = sdk["admin"], sdk["pipeline"]
    made = admin.policies.create(
        "prod-promotion",
        approvers=["team:model-approvers-prod"],
        quorum=2,
        comment_required=True,
        link_requires_login=True,
    )
    assert pipeline.policies.get("prod-promotion") == made
    assert pipeline.policies.list().items == [made]
    approval = pipeline.approvals.create(title="Promote v7?", policy="prod-promotion")
    assert (approval.policy.name, approval.policy.quorum) == ("prod-promotion", 2)
    assert approval.policy.link_requires_login
    assert approval.token
    with pytest.raises(errors.InvalidInput) as refused:
        pipeline.approvals.create(title="t", policy="prod-promotion", approvers=["bob@example.com"])
    assert refused.value.extra["field"] == "approvers"
    with pytest.raises(errors.UnknownPolicy):
        pipeline.approvals.create(title="t", policy="no-such-policy")
    with pytest.raises(errors.PermissionDenied):
        pipeline.policies.delete("prod-promotion")
    replaced = admin.policies.replace(
        "prod-promotion", approvers=["alice@example.com"], timeout="1h"
    )
    assert (replaced.quorum, replaced.timeout_seconds) == (1, 3600)
    assert not replaced.link_requires_login
    assert pipeline.approvals.get(approval.id).policy == approval.policy
    assert admin.policies.delete("prod-promotion") is None
    with pytest.raises(errors.PolicyNotFound):
        pipeline.policies.get("prod-promotion")


def test_the_sdk_sets_reminders_and_escalation_on_a_policy_and_its_approvals_show_them(sdk):
    admin, pipeline = sdk["admin"], sdk["pipeline"]
    made = admin.policies.create(
        "prod-promotion",
        approvers=["team:model-approvers-prod"],
        timeout="24h",
        reminders=["4h", "12h"],
        escalation={"after": "20h", "approvers": ["alice@example.com"]},
    )
    assert made.reminders == [4 * 3600, 12 * 3600]
    assert made.escalation is not None
    assert (made.escalation.after_seconds, made.escalation.approvers[0].name) == (
        72000,
        "alice@example.com",
    )
    assert pipeline.policies.get("prod-promotion") == made
    approval = pipeline.approvals.create(title="Promote v7?", policy="prod-promotion")
    hours = [(r.at - approval.created_at).total_seconds() / 3600 for r in approval.reminders]
    assert hours == [4, 12]
    assert approval.escalation is not None
    assert (approval.escalation.at - approval.created_at).total_seconds() == 72000
    assert approval.escalation.status == "scheduled"
    assert pipeline.approvals.get(approval.id).reminders == approval.reminders
    replaced = admin.policies.replace("prod-promotion", approvers=["alice@example.com"])
    assert (replaced.reminders, replaced.escalation) == (None, None)


def test_the_async_sdk_manages_policies_too(server, keys):
    async def story() -> tuple[int, str | None]:
        async with (
            signoff.AsyncClient(server.url, keys["admin"]) as admin,
            signoff.AsyncClient(server.url, keys["pipeline"]) as pipeline,
        ):
            await admin.policies.create("quick", approvers=["alice@example.com"], timeout="2h")
            await admin.policies.replace("quick", approvers=["bob@example.com"], timeout="3h")
            assert [p.name for p in (await pipeline.policies.list()).items] == ["quick"]
            approval = await pipeline.approvals.create(title="t", policy="quick")
            await admin.policies.delete("quick")
            with pytest.raises(errors.PolicyNotFound):
                await pipeline.policies.get("quick")
            seconds = (approval.deadline_at - approval.created_at).total_seconds()
            return round(seconds), approval.policy.name

    assert asyncio.run(story()) == (3 * 3600, "quick")
