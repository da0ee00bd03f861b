"""Delivery bookkeeping on a real database: what attempts say about a destination, redriving
dead letters one by one and in bulk, and the backlog a monitoring system reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import get_args

import pytest

from signoff import errors, schemas
from signoff.domain import deliveries as domain
from signoff.domain.deliveries import AttemptResult, Backoff, DeliveryStatus, TargetKind
from signoff.services import audit, deliveries
from signoff.store import outbox
from signoff.store.engine import Database
from tests import factories as f

CLI = f.CLI


def record(db: Database, delivery_id: str) -> domain.DeliveryRecord:
    return deliveries.get(db, CLI, delivery_id).record


def test_the_wire_names_the_same_statuses_and_target_kinds_as_the_domain():
    assert set(get_args(schemas.DeliveryStatus)) == {s.value for s in DeliveryStatus}
    assert set(get_args(schemas.TargetKind)) == {k.value for k in TargetKind}


def test_a_destination_fails_from_its_first_failed_attempt_until_it_is_delivered(db):
    delivery_id = f.delivery(db)
    assert (record(db, delivery_id).failing_since, record(db, delivery_id).last_attempt_at) == (
        None,
        None,
    )
    f.attempt_due(db, ok=False)
    f.attempt_due(db, ok=False)
    failing = record(db, delivery_id)
    log = deliveries.get(db, CLI, delivery_id).attempts
    assert failing.failing_since == log[0].attempted_at
    assert failing.last_attempt_at == log[1].attempted_at
    assert (failing.attempts, failing.last_error, failing.status) == (2, "HTTP 503", "pending")
    f.attempt_due(db, ok=True)
    done = record(db, delivery_id)
    assert (done.status, done.failing_since, done.next_attempt_at) == ("delivered", None, None)
    assert done.last_attempt_at == deliveries.get(db, CLI, delivery_id).attempts[-1].attempted_at


def test_a_redrive_opens_a_fresh_window_for_the_maximum_age(db):
    delivery_id = f.delivery(db)
    f.attempt_due(db, ok=False, backoff=f.DIE_AT_ONCE)
    died = record(db, delivery_id)
    assert died.status is DeliveryStatus.DEAD
    redriven = deliveries.redrive(db, CLI, delivery_id)
    assert redriven == record(db, delivery_id)
    assert redriven.status is DeliveryStatus.PENDING
    assert redriven.created_at > died.created_at
    assert redriven.next_attempt_at == redriven.created_at  # due at once
    (claimed,) = deliveries.claim_due(db, lease=timedelta(seconds=30), limit=10)
    assert claimed.created_at == redriven.created_at
    assert claimed.attempts == 1  # the backoff goes on from where it was
    one_hour = Backoff(base_seconds=60, max_age=timedelta(hours=1))
    deliveries.record(
        db, [claimed], [AttemptResult(claimed.id, False, 503, "x", 1, None)], one_hour
    )
    assert record(db, delivery_id).status is DeliveryStatus.PENDING


def test_a_pending_or_delivered_delivery_is_not_redriven(db):
    delivery_id = f.delivery(db)
    with pytest.raises(errors.DeliveryNotDead) as raised:
        deliveries.redrive(db, CLI, delivery_id)
    assert raised.value.extra == {"delivery_status": "pending"}
    f.attempt_due(db, ok=True)
    with pytest.raises(errors.DeliveryNotDead):
        deliveries.redrive(db, CLI, delivery_id)
    assert audit.list_entries(db, CLI, audit.Filters(action="delivery.redrive"))[0] == []


def test_bulk_redrive_takes_every_match_once_across_batches(db, monkeypatch):
    monkeypatch.setattr(deliveries, "REDRIVE_BATCH", 2)
    wanted = {f.delivery(db, subject="ap_1") for _ in range(5)}
    other = f.delivery(db, subject="ap_2")
    f.attempt_due(db, ok=False, backoff=f.DIE_AT_ONCE)
    filters = deliveries.Filters(subject="ap_1")
    assert deliveries.redrive_all(db, CLI, filters) == 5
    assert {record(db, d).status for d in wanted} == {DeliveryStatus.PENDING}
    assert record(db, other).status is DeliveryStatus.DEAD
    assert deliveries.redrive_all(db, CLI, filters) == 0
    entries, _ = audit.list_entries(db, CLI, audit.Filters(action="delivery.redrive"))
    assert sorted(e.object_id for e in entries) == sorted(wanted)


def test_bulk_redrive_refuses_a_status_other_than_dead(db):
    with pytest.raises(errors.InvalidInput):
        deliveries.redrive_all(db, CLI, deliveries.Filters(status=DeliveryStatus.PENDING))


def test_only_admins_look_into_deliveries(db):
    member = f.context(db, f.user(db, "alice@example.com"))
    for call in (
        lambda: deliveries.list_deliveries(db, member, deliveries.Filters()),
        lambda: deliveries.get(db, member, "msg_1"),
        lambda: deliveries.redrive(db, member, "msg_1"),
        lambda: deliveries.redrive_all(db, member, deliveries.Filters()),
    ):
        with pytest.raises(errors.PermissionDenied):
            call()


def test_the_backlog_counts_pending_due_and_dead_deliveries(db):
    now = datetime.now(UTC)
    with db.read() as session:
        assert outbox.backlog(session, now) == outbox.Backlog(0, 0, None, 0)
    first = f.delivery(db)
    f.delivery(db)
    with db.read() as session:
        assert outbox.backlog(session, now + timedelta(seconds=1)) == outbox.Backlog(
            pending=2, due=2, earliest_pending_at=record(db, first).next_attempt_at, dead=0
        )
    deliveries.claim_due(db, lease=timedelta(minutes=1), limit=1)  # one is in a worker's hands
    later = datetime.now(UTC)
    with db.read() as session:
        found = outbox.backlog(session, later)
    assert (found.pending, found.due, found.dead) == (2, 1, 0)
    f.attempt_due(db, ok=False, backoff=f.DIE_AT_ONCE)
    with db.read() as session:
        found = outbox.backlog(session, datetime.now(UTC))
    assert (found.pending, found.dead) == (1, 1)


def test_a_receiver_that_asks_to_wait_is_not_tried_sooner(db):
    delivery_id = f.delivery(db)
    [claimed] = deliveries.claim_due(db, lease=timedelta(seconds=30), limit=10)
    limited = AttemptResult(delivery_id, False, 429, "ratelimited", 5, None, retry_after=600)
    before = datetime.now(UTC)
    deliveries.record(db, [claimed], [limited], Backoff(base_seconds=1))
    next_at = record(db, delivery_id).next_attempt_at
    assert next_at is not None
    assert next_at >= before + timedelta(seconds=600)  # not the 1 s the backoff gives
