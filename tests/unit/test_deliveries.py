"""Delivery bookkeeping on a real database: what attempts say about a destination, redriving
dead letters one by one and in bulk, and the backlog a monitoring system reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import get_args

import pytest
from sqlalchemy import update

from signoff import errors, schemas
from signoff.domain import deliveries as domain
from signoff.domain.deliveries import AttemptResult, Backoff, DeliveryStatus, TargetKind
from signoff.domain.principals import system_context
from signoff.services import audit, deliveries, journal
from signoff.store import outbox
from signoff.store.engine import Database
from signoff.store.tables import DeliveryRow
from tests import factories as f

CLI = system_context("cli")
FOREVER = Backoff(base_seconds=60, max_age=timedelta(days=3))
AT_ONCE = Backoff(max_age=timedelta(0))  # the first failure kills


def make(db: Database, subject: str = "ap_1", target: str = "https://hooks.example.com/x") -> str:
    """A pending delivery of a new event about ``subject``, as a settlement writes it."""
    with db.write() as session:
        event = journal.record(
            session,
            CLI,
            at=datetime.now(UTC),
            action="test.event",
            object_type="approval",
            object_id=subject,
            event_type="approval.settled",
        )
        assert event is not None
        journal.deliver(db, session, event, TargetKind.CALLBACK, target)
    with db.read() as session:
        return outbox.deliveries_of_subject(session, subject)[-1].id


def attempt(db: Database, ok: bool, backoff: Backoff = FOREVER) -> None:
    """Claim whatever is due and record one attempt at each: ``ok`` or HTTP 503."""
    claimed = deliveries.claim_due(db, lease=timedelta(seconds=30), limit=100)
    assert claimed, "nothing was due"
    results = [
        AttemptResult(d.id, ok, 204 if ok else 503, None if ok else "HTTP 503", 12, None)
        for d in claimed
    ]
    deliveries.record(db, claimed, results, backoff)
    with db.write() as session:  # due again at once, whatever the backoff said
        for delivery in claimed:
            session.execute(
                update(DeliveryRow)
                .where(DeliveryRow.id == delivery.id)
                .values(next_attempt_at=datetime.now(UTC))
            )


def record(db: Database, delivery_id: str) -> domain.DeliveryRecord:
    return deliveries.get(db, CLI, delivery_id).record


def test_the_wire_names_the_same_statuses_and_target_kinds_as_the_domain():
    assert set(get_args(schemas.DeliveryStatus)) == {s.value for s in DeliveryStatus}
    assert set(get_args(schemas.TargetKind)) == {k.value for k in TargetKind}


def test_a_destination_fails_from_its_first_failed_attempt_until_it_is_delivered(db):
    delivery_id = make(db)
    assert (record(db, delivery_id).failing_since, record(db, delivery_id).last_attempt_at) == (
        None,
        None,
    )
    attempt(db, ok=False)
    attempt(db, ok=False)
    failing = record(db, delivery_id)
    log = deliveries.get(db, CLI, delivery_id).attempts
    assert failing.failing_since == log[0].attempted_at
    assert failing.last_attempt_at == log[1].attempted_at
    assert (failing.attempts, failing.last_error, failing.status) == (2, "HTTP 503", "pending")
    attempt(db, ok=True)
    done = record(db, delivery_id)
    assert (done.status, done.failing_since, done.next_attempt_at) == ("delivered", None, None)
    assert done.last_attempt_at == deliveries.get(db, CLI, delivery_id).attempts[-1].attempted_at


def test_a_redrive_opens_a_fresh_window_for_the_maximum_age(db):
    delivery_id = make(db)
    attempt(db, ok=False, backoff=AT_ONCE)
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
    delivery_id = make(db)
    with pytest.raises(errors.DeliveryNotDead) as raised:
        deliveries.redrive(db, CLI, delivery_id)
    assert raised.value.extra == {"delivery_status": "pending"}
    attempt(db, ok=True)
    with pytest.raises(errors.DeliveryNotDead):
        deliveries.redrive(db, CLI, delivery_id)
    assert audit.list_entries(db, CLI, audit.Filters(action="delivery.redrive"))[0] == []


def test_bulk_redrive_takes_every_match_once_across_batches(db, monkeypatch):
    monkeypatch.setattr(deliveries, "REDRIVE_BATCH", 2)
    wanted = {make(db, subject="ap_1") for _ in range(5)}
    other = make(db, subject="ap_2")
    attempt(db, ok=False, backoff=AT_ONCE)
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
    first = make(db)
    make(db)
    with db.read() as session:
        assert outbox.backlog(session, now + timedelta(seconds=1)) == outbox.Backlog(
            pending=2, due=2, earliest_pending_at=record(db, first).next_attempt_at, dead=0
        )
    deliveries.claim_due(db, lease=timedelta(minutes=1), limit=1)  # one is in a worker's hands
    later = datetime.now(UTC)
    with db.read() as session:
        found = outbox.backlog(session, later)
    assert (found.pending, found.due, found.dead) == (2, 1, 0)
    attempt(db, ok=False, backoff=AT_ONCE)
    with db.read() as session:
        found = outbox.backlog(session, datetime.now(UTC))
    assert (found.pending, found.dead) == (1, 1)
