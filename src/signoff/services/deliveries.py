"""Deliveries: the dispatcher's bookkeeping (claim what is due, record what happened), and
the admins' view of the outbox (list, read with every attempt, redrive dead letters).

Admins see targets in full, but apprise URLs in their privacy form. A redrive is one
transaction per batch: the deliveries become pending and due at once, each
gets a ``delivery.redrive`` audit entry, and the dispatcher is woken.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from signoff import errors
from signoff.domain import deliveries
from signoff.domain.deliveries import (
    AttemptResult,
    Backoff,
    Delivery,
    DeliveryHistory,
    DeliveryRecord,
    DeliveryStatus,
)
from signoff.domain.principals import Context
from signoff.services import journal
from signoff.store import outbox
from signoff.store.engine import Database
from signoff.store.outbox import Filters

__all__ = [
    "Filters",
    "claim_due",
    "get",
    "list_deliveries",
    "next_attempt_at",
    "record",
    "redrive",
    "redrive_all",
]

REDRIVE_BATCH = 500  # deliveries a bulk redrive changes per transaction


def claim_due(db: Database, *, lease: timedelta, limit: int) -> list[Delivery]:
    with db.write(priority=True) as session:
        return outbox.claim_due(session, now=datetime.now(UTC), lease=lease, limit=limit)


def record(
    db: Database, claimed: list[Delivery], results: list[AttemptResult], backoff: Backoff
) -> None:
    """Record a batch of attempts in one transaction: delivered, retried later, or dead."""
    now = datetime.now(UTC)
    by_id = {delivery.id: delivery for delivery in claimed}
    with db.write(priority=True) as session:
        for result in results:
            delivery = by_id[result.delivery_id]
            status, next_at = _after(result, delivery, backoff, now)
            outbox.record_attempt(session, result, at=now, status=status, next_attempt_at=next_at)


def next_attempt_at(db: Database) -> datetime | None:
    with db.read() as session:
        return outbox.next_attempt_at(session)


def _after(
    result: AttemptResult, delivery: Delivery, backoff: Backoff, now: datetime
) -> tuple[DeliveryStatus, datetime]:
    if result.ok:
        return DeliveryStatus.DELIVERED, now
    if result.final or backoff.is_too_old(delivery.created_at, now):
        return DeliveryStatus.DEAD, now
    delay = backoff.next_delay(delivery.attempts)
    if result.retry_after is not None:  # the receiver said when: never sooner
        delay = max(delay, timedelta(seconds=result.retry_after))
    return deliveries.DeliveryStatus.PENDING, now + delay


def list_deliveries(
    db: Database, ctx: Context, filters: Filters, *, cursor: str | None = None, limit: int = 50
) -> tuple[list[DeliveryRecord], str | None]:
    """A page of deliveries, newest first, and the cursor of the next page (the last id)."""
    ctx.principal.require_admin()
    with db.read() as session:
        found = outbox.list_deliveries(session, filters, before_id=cursor, limit=limit + 1)
    page = [_shown(record) for record in found[:limit]]
    return page, page[-1].id if len(found) > limit else None


def get(db: Database, ctx: Context, delivery_id: str) -> DeliveryHistory:
    ctx.principal.require_admin()
    with db.read() as session:
        return DeliveryHistory(
            _shown(outbox.get_delivery(session, delivery_id)),
            outbox.attempts_of(session, delivery_id),
        )


def redrive(db: Database, ctx: Context, delivery_id: str) -> DeliveryRecord:
    """Make a dead delivery pending again and due at once; ``DeliveryNotDead`` otherwise."""
    ctx.principal.require_admin()
    now = datetime.now(UTC)
    with db.write() as session:
        found = outbox.get_delivery(session, delivery_id, for_update=True)
        found.check_can_redrive()
        _redrive(db, session, ctx, [found], now)
    return _shown(found.redriven(now))


def redrive_all(db: Database, ctx: Context, filters: Filters) -> int:
    """Redrive every dead delivery that matches ``filters``; how many. Batches of
    ``REDRIVE_BATCH``, each its own transaction, newest first: each delivery is looked at
    once, even one that dies again before the last batch."""
    ctx.principal.require_admin()
    if filters.status not in (None, DeliveryStatus.DEAD):
        raise errors.InvalidInput(
            "only dead deliveries are redriven: leave status out or make it 'dead'",
            field="status",
        )
    dead, total, before = replace(filters, status=DeliveryStatus.DEAD), 0, None
    while True:
        now = datetime.now(UTC)
        with db.write() as session:
            batch = outbox.list_deliveries(
                session, dead, before_id=before, limit=REDRIVE_BATCH, for_update=True
            )
            if batch:
                _redrive(db, session, ctx, batch, now)
        total += len(batch)
        if len(batch) < REDRIVE_BATCH:
            return total
        before = batch[-1].id


def _shown(record: DeliveryRecord) -> DeliveryRecord:
    """Admins see targets in full, but an apprise URL (a bundle of credentials) in its
    privacy form."""
    shown = deliveries.shown_target(
        record.purpose, record.target_kind, record.target, deliveries.Reader.ADMIN
    )
    return replace(record, target=shown)


def _redrive(
    db: Database, session: Session, ctx: Context, found: list[DeliveryRecord], now: datetime
) -> None:
    outbox.redrive(session, [record.id for record in found], now=now)
    for record in found:
        journal.record(
            session,
            ctx,
            at=now,
            action="delivery.redrive",
            object_type="delivery",
            object_id=record.id,
            before={
                "status": record.status.value,
                "attempts": record.attempts,
                "created_at": record.created_at.isoformat(),
                "last_error": record.last_error,
            },
            after={"status": DeliveryStatus.PENDING.value},
        )
    db.notify(session, journal.DELIVERY)
