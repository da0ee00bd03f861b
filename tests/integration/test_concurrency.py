"""No decision is lost or applied twice, with 50 decision requests in flight at once."""

from __future__ import annotations

import asyncio
import collections

import httpx
import pytest

import signoff
from tests.conftest import RunningServer

APPROVERS = 50


@pytest.fixture
def approvers(server: RunningServer) -> tuple[signoff.Client, list[str]]:
    admin = signoff.Client(server.url, server.admin_key)
    keys = []
    for number in range(APPROVERS):
        email = f"approver{number}@example.com"
        admin.people.create_user(email)
        keys.append(admin.people.create_key(user=email).key)
    admin.people.create_team("owners")
    for number in range(APPROVERS):
        admin.people.add_member("owners", f"approver{number}@example.com")
    return admin, keys


async def _decide_all(
    url: str, approval_id: str, keys: list[str], verdicts: list[str]
) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(keys))
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as http:
        start = asyncio.Event()

        async def one(key: str, verdict: str) -> httpx.Response:
            await start.wait()
            return await http.post(
                f"/v1/approvals/{approval_id}/decisions",
                json={"verdict": verdict},
                headers={"authorization": f"Bearer {key}"},
            )

        tasks = [asyncio.create_task(one(k, v)) for k, v in zip(keys, verdicts, strict=True)]
        await asyncio.sleep(0.05)
        start.set()
        return await asyncio.gather(*tasks)


def _codes(responses: list[httpx.Response]) -> collections.Counter[object]:
    return collections.Counter(
        r.status_code if r.is_success else r.json()["code"] for r in responses
    )


def test_fifty_approvers_racing_on_quorum_one_settle_it_exactly_once(server, approvers):
    admin, keys = approvers
    approval = admin.approvals.create(title="race", approvers=["team:owners"])
    responses = asyncio.run(
        _decide_all(server.url, approval.id, keys, ["approve"] * 25 + ["reject"] * 25)
    )
    assert _codes(responses) == {200: 1, "already_decided": APPROVERS - 1}
    settled = admin.approvals.get(approval.id)
    assert len(settled.decisions) == 1
    assert settled.status == (
        "approved" if settled.decisions[0].verdict == "approve" else "rejected"
    )
    _assert_settled_once(admin, approval.id)


def test_fifty_approvals_racing_on_quorum_fifty_all_count_and_settle_once(server, approvers):
    admin, keys = approvers
    approval = admin.approvals.create(
        title="race", approvers=["team:owners"], policy={"quorum": APPROVERS}
    )
    responses = asyncio.run(_decide_all(server.url, approval.id, keys, ["approve"] * APPROVERS))
    assert _codes(responses) == {200: APPROVERS}
    settled = admin.approvals.get(approval.id)
    assert settled.status == "approved"
    assert len({d.user_id for d in settled.decisions}) == APPROVERS
    _assert_settled_once(admin, approval.id)


def test_one_approver_sending_fifty_decisions_is_counted_once(server, approvers):
    admin, keys = approvers
    approval = admin.approvals.create(title="race", approvers=["team:owners"], policy={"quorum": 2})
    responses = asyncio.run(
        _decide_all(server.url, approval.id, [keys[0]] * APPROVERS, ["approve"] * APPROVERS)
    )
    assert _codes(responses) == {200: 1, "duplicate_decision": APPROVERS - 1}
    assert len(admin.approvals.get(approval.id).decisions) == 1


def _assert_settled_once(admin: signoff.Client, approval_id: str) -> None:
    entries = admin.people.audit(object_id=approval_id, limit=1000).items
    assert [e.action for e in entries].count("approval.settle") == 1
    assert admin.people.verify_audit().ok
