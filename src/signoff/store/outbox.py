"""The transactional outbox: events, and deliveries of events to destinations."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from signoff.domain import deliveries, events
from signoff.domain.deliveries import DeliveryStatus
from signoff.store.tables import DeliveryAttemptRow, DeliveryRow, EventRow, is_pending, table

_INSERT_EVENT = insert(table(EventRow))
_INSERT_DELIVERY = insert(table(DeliveryRow))


def insert_event(session: Session, event: events.Event) -> None:
    session.execute(
        _INSERT_EVENT,
        {
            "id": event.id,
            "type": event.type,
            "subject": event.subject,
            "actor": event.actor,
            "data": event.data,
            "occurred_at": event.occurred_at,
            "version": event.version,
        },
    )


@dataclass(frozen=True)
class NewDelivery:
    id: str
    target_kind: deliveries.TargetKind
    target: str
    subscription_id: str | None = None


def insert_deliveries(session: Session, event: events.Event, new: list[NewDelivery]) -> None:
    """Deliveries of ``event``, due at once, in one statement."""
    session.execute(
        _INSERT_DELIVERY,
        [
            {
                "id": delivery.id,
                "event_id": event.id,
                "target_kind": delivery.target_kind.value,
                "target": delivery.target,
                "status": DeliveryStatus.PENDING.value,
                "attempts": 0,
                "next_attempt_at": event.occurred_at,
                "created_at": event.occurred_at,
                "subscription_id": delivery.subscription_id,
            }
            for delivery in new
        ],
    )


def claim_due(
    session: Session, *, now: datetime, lease: timedelta, limit: int
) -> list[deliveries.Delivery]:
    """Take up to ``limit`` due deliveries by pushing their next attempt ``lease`` ahead.

    ``SKIP LOCKED`` lets workers on PostgreSQL claim side by side without waiting on each
    other; SQLite has one writer at a time anyway and ignores the clause.
    """
    due = (
        select(DeliveryRow, EventRow)
        .join(EventRow, EventRow.id == DeliveryRow.event_id)
        .where(is_pending(DeliveryRow.status), DeliveryRow.next_attempt_at <= now)
        .order_by(DeliveryRow.next_attempt_at)
        .limit(limit)
        .with_for_update(of=DeliveryRow, skip_locked=True)
    )
    claimed = list(session.execute(due))
    if claimed:
        session.execute(
            update(DeliveryRow)
            .where(DeliveryRow.id.in_([row.id for row, _ in claimed]))
            .values(next_attempt_at=now + lease)
        )
    return [
        deliveries.Delivery(
            id=row.id,
            event=_event(event),
            target_kind=deliveries.TargetKind(row.target_kind),
            target=row.target,
            attempts=row.attempts,
            created_at=row.created_at,
            subscription_id=row.subscription_id,
        )
        for row, event in claimed
    ]


def record_attempt(
    session: Session,
    result: deliveries.AttemptResult,
    *,
    at: datetime,
    status: DeliveryStatus,
    next_attempt_at: datetime,
) -> None:
    session.execute(
        insert(table(DeliveryAttemptRow)),
        {
            "delivery_id": result.delivery_id,
            "attempted_at": at,
            "ok": result.ok,
            "status_code": result.status_code,
            "error": result.error,
            "latency_ms": result.latency_ms,
            "response_excerpt": result.response_excerpt,
        },
    )
    session.execute(
        update(DeliveryRow)
        .where(DeliveryRow.id == result.delivery_id)
        .values(
            attempts=DeliveryRow.attempts + 1,
            status=status.value,
            next_attempt_at=next_attempt_at,
            completed_at=at if status is not DeliveryStatus.PENDING else None,
            last_error=None if result.ok else (result.error or f"HTTP {result.status_code}"),
        )
    )


def next_attempt_at(session: Session) -> datetime | None:
    return session.scalars(
        select(func.min(DeliveryRow.next_attempt_at)).where(is_pending(DeliveryRow.status))
    ).first()


def deliveries_of_subject(
    session: Session, subject: str, *, kinds: Collection[deliveries.TargetKind] | None = None
) -> list[dict[str, object]]:
    """Delivery state for what an object caused, for showing on that object; only ``kinds``
    when given (an approval shows its callbacks: what went to subscriptions, even deleted
    ones, is for admins' eyes, as a URL may hold a token)."""
    query = (
        select(DeliveryRow, EventRow.type)
        .join(EventRow, EventRow.id == DeliveryRow.event_id)
        .where(EventRow.subject == subject)
        .order_by(DeliveryRow.created_at, DeliveryRow.id)
    )
    if kinds is not None:
        query = query.where(DeliveryRow.target_kind.in_([kind.value for kind in kinds]))
    rows = session.execute(query)
    return [
        {
            "id": row.id,
            "event_type": event_type,
            "target_kind": row.target_kind,
            "target": row.target,
            "status": row.status,
            "attempts": row.attempts,
            "next_attempt_at": row.next_attempt_at if row.status == "pending" else None,
            "last_error": row.last_error,
        }
        for row, event_type in rows
    ]


def events_of_subject(session: Session, subject: str) -> list[events.Event]:
    rows = session.scalars(
        select(EventRow)
        .where(EventRow.subject == subject)
        .order_by(EventRow.occurred_at, EventRow.id)
    )
    return [_event(row) for row in rows]


def _event(row: EventRow) -> events.Event:
    return events.Event(
        id=row.id,
        type=row.type,
        subject=row.subject,
        actor=row.actor,
        data=row.data,
        occurred_at=row.occurred_at,
        version=row.version,
    )
