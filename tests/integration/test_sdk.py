"""The Python SDK against a real server: sync and async twins, errors as classes, wait()."""

from __future__ import annotations

import asyncio
import threading

import pytest

import signoff
from signoff import errors
from tests.conftest import RunningServer


@pytest.fixture
def clients(server: RunningServer) -> dict[str, signoff.Client]:
    admin = signoff.Client(server.url, server.admin_key)
    admin.people.create_team("owners")
    for name in ("pipeline", "alice"):
        admin.people.create_user(f"{name}@example.com")
    admin.people.add_member("owners", "alice@example.com")
    keys = {
        name: admin.people.create_key(user=f"{name}@example.com").key
        for name in ("pipeline", "alice")
    }
    return {"admin": admin} | {name: signoff.Client(server.url, key) for name, key in keys.items()}


def test_create_and_wait_returns_the_decided_approval(clients):
    approval = clients["pipeline"].approvals.create(
        title="Apply batch 42?",
        approvers=["team:owners"],
        context={"ratio": 0.064},
        labels=["nightly"],
    )
    assert approval.token
    assert approval.status == "pending"
    decider = threading.Timer(
        0.3, lambda: clients["alice"].approvals.approve(approval.id, comment="ok")
    )
    decider.start()
    settled = approval.wait(timeout=20)
    decider.join()
    assert settled.status == "approved"
    assert settled.outcome["comment"] == "ok"


def test_wait_raises_timeout_error_when_nobody_decides(clients):
    approval = clients["pipeline"].approvals.create(title="t", approvers=["team:owners"])
    with pytest.raises(TimeoutError):
        approval.wait(timeout=0.3)


def test_the_task_token_alone_can_wait_and_cancel(clients, server):
    approval = clients["pipeline"].approvals.create(title="t", approvers=["team:owners"])
    with signoff.Client(server.url, approval.token) as workflow:
        assert workflow.approvals.get(approval.id).status == "pending"
        assert workflow.approvals.cancel(approval.id, reason="upstream failed").status == "canceled"
        assert workflow.approvals.wait(approval.id, timeout=5).outcome == {
            "status": "canceled",
            "reason": "canceled",
        }


def test_server_errors_arrive_as_the_same_exception_classes(clients):
    approval = clients["pipeline"].approvals.create(title="t", approvers=["team:owners"])
    with pytest.raises(errors.RequesterCannotDecide):
        approval.approve()
    clients["alice"].approvals.reject(approval.id, comment="no")
    with pytest.raises(errors.AlreadyDecided) as raised:
        clients["admin"].approvals.approve(approval.id)
    assert raised.value.extra["outcome"]["comment"] == "no"
    with pytest.raises(errors.ApprovalNotFound):
        clients["pipeline"].approvals.get("ap_nope")
    with pytest.raises(errors.InvalidInput):
        clients["pipeline"].approvals.create(
            title="t", approvers=["team:owners"], timeout="forever"
        )


def test_an_unreachable_server_is_server_unreachable(clients):
    with (
        signoff.Client("http://127.0.0.1:9", "sok_x") as nowhere,
        pytest.raises(errors.ServerUnreachable),
    ):
        nowhere.approvals.cancel("ap_x")


def test_retrying_create_with_its_key_never_duplicates(clients):
    make = lambda: clients["pipeline"].approvals.create(  # noqa: E731
        title="t", approvers=["team:owners"], idempotency_key="job-7/run-3"
    )
    assert make().id == make().id
    assert len(clients["pipeline"].approvals.list().items) == 1


def test_iterate_follows_cursors(clients):
    made = {
        clients["pipeline"].approvals.create(title=f"t{i}", approvers=["team:owners"]).id
        for i in range(5)
    }
    seen = [a.id for a in clients["alice"].approvals.iterate(decidable=True, limit=2)]
    assert sorted(seen) == sorted(made)


def test_the_async_client_has_the_same_methods(server, clients):
    pipeline_key = clients["admin"].people.create_key(user="pipeline@example.com").key
    alice_key = clients["admin"].people.create_key(user="alice@example.com").key

    async def story() -> str:
        async with (
            signoff.AsyncClient(server.url, pipeline_key) as pipeline,
            signoff.AsyncClient(server.url, alice_key) as alice,
        ):
            approval = await pipeline.approvals.create(title="t", approvers=["team:owners"])
            waiting = asyncio.create_task(pipeline.approvals.wait(approval.id, timeout=20))
            await asyncio.sleep(0.2)
            await alice.approvals.reject(approval.id)
            with pytest.raises(errors.AlreadyDecided):
                await alice.approvals.approve(approval.id)
            return (await waiting).status

    assert asyncio.run(story()) == "rejected"


def test_sync_and_async_clients_offer_the_same_method_names():
    def public(cls: type) -> set[str]:
        return {name for name in dir(cls) if not name.startswith("_")}

    assert public(signoff.client.Approvals) == public(signoff.client.AsyncApprovals)
    assert public(signoff.client.People) == public(signoff.client.AsyncPeople)
    assert public(signoff.client.Policies) == public(signoff.client.AsyncPolicies)
    assert public(signoff.client.Deliveries) == public(signoff.client.AsyncDeliveries)
    assert public(signoff.client.Subscriptions) == public(signoff.client.AsyncSubscriptions)


def test_the_sdk_surface_is_sorted_and_importable():
    assert signoff.__all__ == sorted(signoff.__all__)
    for name in signoff.__all__:
        assert getattr(signoff, name) is not None


def test_a_pipeline_key_without_decide_scope_raises_insufficient_scope(server, clients):
    key = clients["admin"].people.create_key(
        user="pipeline@example.com", scopes=["approvals:write", "approvals:read"], expires_in="7d"
    )
    assert key.scopes == ["approvals:read", "approvals:write"]
    assert key.expires_at is not None
    pipeline = signoff.Client(server.url, key.key)
    approval = pipeline.approvals.create(
        title="t", approvers=["pipeline@example.com"], policy={"requester_can_decide": True}
    )
    with pytest.raises(errors.InsufficientScope) as refused:
        pipeline.approvals.approve(approval.id)
    assert refused.value.code == "insufficient_scope"


def test_an_admin_unlinks_a_provider_account_and_others_may_not(clients):
    clients["admin"].people.unlink_oidc("alice@example.com")  # nothing linked: no error
    with pytest.raises(errors.PermissionDenied):
        clients["alice"].people.unlink_oidc("alice@example.com")
    with pytest.raises(errors.NotFound):
        clients["admin"].people.unlink_oidc("nobody@example.com")


def test_an_admin_removes_a_member_and_deletes_a_team_no_approval_waits_on(clients):
    admin = clients["admin"]
    team = admin.people.remove_member("owners", "alice@example.com")
    assert team.member_ids == []
    admin.people.remove_member("owners", "alice@example.com")  # not a member: no error
    admin.people.create_team("spare")
    admin.people.delete_team("spare")
    assert "spare" not in {t.name for t in admin.people.list_teams()}
    clients["pipeline"].approvals.create(title="t", approvers=["team:owners"])
    with pytest.raises(errors.Conflict, match="pending approvals wait on team owners"):
        admin.people.delete_team("owners")
    with pytest.raises(errors.PermissionDenied):
        clients["alice"].people.delete_team("owners")
    with pytest.raises(errors.TeamNotFound):
        admin.people.delete_team("nobody")
