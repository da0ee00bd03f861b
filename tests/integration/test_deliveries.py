"""The outbox for admins over real HTTP: listing deliveries, reading every attempt, redriving
dead letters, and how a failing destination shows on its approval."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

import signoff
from signoff import errors, schemas
from tests.conftest import RunningServer
from tests.receivers import Receiver

# A delivery dies at its first failure once it is this old: dead letters in a second.
DIES_FAST = {"delivery_max_age_seconds": 0.3}


@pytest.fixture
def people(server: RunningServer) -> dict[str, signoff.Client]:
    admin = signoff.Client(server.url, server.admin_key)
    admin.people.create_user("alice@example.com")
    alice = signoff.Client(server.url, admin.people.create_key(user="alice@example.com").key)
    return {"admin": admin, "alice": alice}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def settle(people: dict[str, signoff.Client], callback_url: str) -> str:
    """An approval, approved at once, whose approval.settled goes to ``callback_url``."""
    approval = people["admin"].approvals.create(
        title="t", approvers=["alice@example.com"], callback_url=callback_url
    )
    people["alice"].approvals.approve(approval.id)
    return approval.id


def only_delivery(client: signoff.Client, approval_id: str) -> schemas.DeliveryPublic:
    (found,) = client.approvals.deliveries(approval_id)
    return found


def until(condition: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)
    return found


def delivery_once(
    client: signoff.Client, approval_id: str, check: Callable[[schemas.DeliveryPublic], bool]
) -> schemas.DeliveryPublic:
    """The approval's one delivery, as soon as ``check`` holds for it."""

    def found() -> schemas.DeliveryPublic | None:
        delivery = only_delivery(client, approval_id)
        return delivery if check(delivery) else None

    return until(found)


def dead(client: signoff.Client, approval_id: str) -> schemas.DeliveryPublic:
    return delivery_once(client, approval_id, lambda d: d.status == "dead")


def delivered(client: signoff.Client, approval_id: str) -> schemas.DeliveryPublic:
    return delivery_once(client, approval_id, lambda d: d.status == "delivered")


def test_an_admin_lists_deliveries_newest_first_with_filters_and_cursors(people, receiver):
    made = [settle(people, receiver.url) for _ in range(3)]
    receiver.wait_for(3)
    admin = people["admin"]
    for approval_id in made:
        delivered(admin, approval_id)

    page = admin.deliveries.list(status="delivered", limit=2)
    assert [d.subject for d in page.items] == made[::-1][:2]
    rest = admin.deliveries.list(status="delivered", limit=2, cursor=page.next_cursor)
    assert [d.subject for d in rest.items] == [made[0]]
    assert rest.next_cursor is None
    assert [d.subject for d in admin.deliveries.iterate(limit=1)] == made[::-1]

    (one,) = admin.deliveries.list(subject=made[1]).items
    assert (one.event_type, one.target_kind, one.target) == (
        "approval.settled",
        "callback",
        receiver.url,
    )
    assert one.completed_at is not None
    assert one.failing_since is None
    assert admin.deliveries.list(event_type="approval.created").items == []
    assert admin.deliveries.list(target_kind="email").items == []
    assert admin.deliveries.list(status="dead").items == []


def test_a_delivery_shows_every_attempt(people, receiver):
    receiver.fail_next = 2
    approval_id = settle(people, receiver.url)
    (call,) = receiver.wait_for(1)
    admin = people["admin"]
    delivery = delivered(admin, approval_id)
    found = admin.deliveries.get(call.headers["webhook-id"])
    assert found.id == delivery.id
    assert found.attempts == 3
    assert [(a.ok, a.status_code, a.error) for a in found.attempt_log] == [
        (False, 503, "HTTP 503"),
        (False, 503, "HTTP 503"),
        (True, 204, None),
    ]
    times = [a.attempted_at for a in found.attempt_log]
    assert times == sorted(times)
    assert found.last_attempt_at == times[-1]
    assert all(a.latency_ms >= 0 for a in found.attempt_log)
    with pytest.raises(errors.DeliveryNotFound):
        admin.deliveries.get("msg_nope")


def test_a_failing_destination_shows_since_when_on_its_approval(people, receiver):
    """What a page shows: "failing since 10:02, 3 attempts, last error HTTP 503, next attempt
    at 10:03", and nothing of the kind once it went through."""
    receiver.fail_next = 10_000
    before = datetime.now(UTC)
    approval_id = settle(people, receiver.url)
    alice = people["alice"]  # an approver: whoever can see the approval sees this
    failing = delivery_once(alice, approval_id, lambda d: d.attempts >= 3)
    assert failing.status == "pending"
    assert before <= failing.failing_since < failing.last_attempt_at
    assert failing.last_error == "HTTP 503"
    assert failing.next_attempt_at is not None
    detail = people["admin"].deliveries.get(failing.id)
    assert failing.failing_since == detail.attempt_log[0].attempted_at
    receiver.fail_next = 0
    receiver.wait_for(1)
    done = delivered(alice, approval_id)
    assert (done.failing_since, done.next_attempt_at) == (None, None)


@pytest.mark.parametrize("settings_overrides", [DIES_FAST], indirect=True)
def test_a_dead_delivery_is_redriven_and_delivered_at_once(people, receiver):
    receiver.fail_next = 10_000
    approval_id = settle(people, receiver.url)
    admin = people["admin"]
    died = dead(admin, approval_id)
    assert died.completed_at is not None
    receiver.fail_next = 0
    redriven = admin.deliveries.redrive(died.id)
    assert redriven.status == "pending"
    assert redriven.created_at > died.created_at  # a fresh window for the maximum age
    assert redriven.completed_at is None
    (call,) = receiver.wait_for(1, timeout=5)
    assert call.headers["webhook-id"] == died.id  # receivers see it as the same message
    assert delivered(admin, approval_id).attempts == died.attempts + 1
    (entry,) = admin.people.audit(object_id=died.id).items
    assert (entry.action, entry.object_type) == ("delivery.redrive", "delivery")
    assert entry.before["status"] == "dead"
    assert entry.before["attempts"] == died.attempts
    assert entry.after == {"status": "pending"}


def test_only_a_dead_delivery_can_be_redriven(people, receiver, server):
    receiver.fail_next = 10_000
    pending = only_delivery(people["admin"], settle(people, receiver.url))
    with pytest.raises(errors.DeliveryNotDead) as raised:
        people["admin"].deliveries.redrive(pending.id)
    assert raised.value.extra["delivery_status"] == "pending"
    answer = httpx.post(
        f"{server.url}/v1/deliveries/{pending.id}/redrive",
        headers={"authorization": f"Bearer {server.admin_key}"},
    )
    assert (answer.status_code, answer.json()["code"]) == (409, "delivery_not_dead")
    with pytest.raises(errors.DeliveryNotFound):
        people["admin"].deliveries.redrive("msg_nope")


@pytest.mark.parametrize("settings_overrides", [DIES_FAST], indirect=True)
def test_bulk_redrive_takes_the_dead_deliveries_that_match(people):
    with Receiver() as first, Receiver() as second:
        first.fail_next = second.fail_next = 10_000
        one, other = settle(people, first.url), settle(people, second.url)
        admin = people["admin"]
        dead(admin, one), dead(admin, other)
        first.fail_next = second.fail_next = 0
        assert admin.deliveries.redrive_all(subject=one) == 1
        first.wait_for(1, timeout=5)
        assert only_delivery(admin, other).status == "dead"
        assert admin.deliveries.redrive_all(event_type="approval.created") == 0
        assert admin.deliveries.redrive_all() == 1
        second.wait_for(1, timeout=5)
        assert admin.deliveries.redrive_all() == 0
    redrives = admin.people.audit(action="delivery.redrive").items
    assert sorted(e.object_id for e in redrives) == sorted(
        only_delivery(admin, a).id for a in (one, other)
    )


def test_bulk_redrive_refuses_other_statuses(server):
    answer = httpx.post(
        f"{server.url}/v1/deliveries/redrive",
        json={"status": "pending"},
        headers={"authorization": f"Bearer {server.admin_key}"},
    )
    assert (answer.status_code, answer.json()["code"]) == (422, "invalid_input")
    assert answer.json()["errors"][0]["field"] == "status"


def test_deliveries_are_for_admins_only(people):
    with pytest.raises(errors.PermissionDenied):
        people["alice"].deliveries.list()
    with pytest.raises(errors.PermissionDenied):
        people["alice"].deliveries.redrive_all()


def test_the_async_client_reads_and_redrives_deliveries(people, receiver, server):
    approval_id = settle(people, receiver.url)
    receiver.wait_for(1)

    async def story() -> tuple[list[str], int, str]:
        async with signoff.AsyncClient(server.url, server.admin_key) as admin:
            seen = [d.subject async for d in admin.deliveries.iterate(status="delivered")]
            detail = await admin.deliveries.get((await admin.deliveries.list()).items[0].id)
            with pytest.raises(errors.DeliveryNotDead):
                await admin.deliveries.redrive(detail.id)
            return seen, await admin.deliveries.redrive_all(), detail.status

    delivered(people["admin"], approval_id)
    assert asyncio.run(story()) == ([approval_id], 0, "delivered")
