"""Delivery bookkeeping for the dispatcher: claim what is due, record what happened."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from signoff.domain import deliveries
from signoff.domain.deliveries import AttemptResult, Backoff, Delivery, DeliveryStatus
from signoff.store import outbox
from signoff.store.engine import Database


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
    if backoff.is_too_old(delivery.created_at, now):
        return DeliveryStatus.DEAD, now
    return deliveries.DeliveryStatus.PENDING, now + backoff.next_delay(delivery.attempts)
