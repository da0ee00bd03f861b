"""The transactional outbox: events, and deliveries of events to destinations."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, case, exists, func, insert, literal_column, select, update
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql import ColumnElement

from signoff import errors
from signoff.domain import deliveries, events
from signoff.domain.deliveries import DeliveryRecord, DeliveryStatus
from signoff.store.tables import DeliveryAttemptRow, DeliveryRow, EventRow, is_pending, table

_INSERT_EVENT = insert(table(EventRow))
_INSERT_DELIVERY = insert(table(DeliveryRow))
_DEAD: ColumnElement[str] = literal_column("'dead'")  # written into the SQL, as ``is_pending``


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
    purpose: deliveries.Purpose
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
                "purpose": delivery.purpose.value,
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
            purpose=deliveries.Purpose(row.purpose),
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


@dataclass(frozen=True)
class Filters:
    status: DeliveryStatus | None = None
    target_kind: str | None = None
    event_type: str | None = None
    subject: str | None = None
    subscription_id: str | None = None


def deliveries_of_subject(
    session: Session, subject: str, *, purposes: Collection[deliveries.Purpose] | None = None
) -> list[DeliveryRecord]:
    """Delivery state for what an object caused, for showing on that object; only those
    made for ``purposes`` when given. The object's events by ``ix_events_subject``, their
    deliveries by ``ix_deliveries_event_id``."""
    query = _records().where(EventRow.subject == subject)
    if purposes is not None:
        query = query.where(DeliveryRow.purpose.in_([purpose.value for purpose in purposes]))
    return _with_attempt_times(
        session, list(session.execute(query.order_by(DeliveryRow.created_at, DeliveryRow.id)))
    )


def failing_of_subject(session: Session, subject: str) -> list[deliveries.FailingDelivery]:
    """The deliveries of what an object caused that failed and are not delivered, with
    their first failure: one statement, by the same indexes as ``deliveries_of_subject``;
    the attempts are read only for the failing ones (usually none)."""
    first_failure = (
        select(func.min(DeliveryAttemptRow.attempted_at))
        .where(DeliveryAttemptRow.delivery_id == DeliveryRow.id, DeliveryAttemptRow.ok.is_(False))
        .scalar_subquery()
    )
    rows = session.execute(
        select(DeliveryRow, first_failure)
        .join(EventRow, EventRow.id == DeliveryRow.event_id)
        .where(
            EventRow.subject == subject,
            DeliveryRow.status != DeliveryStatus.DELIVERED.value,
            DeliveryRow.last_error.is_not(None),
        )
    )
    return [
        deliveries.FailingDelivery(
            id=row.id,
            purpose=row.purpose,
            target_kind=row.target_kind,
            target=row.target,
            status=DeliveryStatus(row.status),
            attempts=row.attempts,
            first_failure=first or row.created_at,  # its attempts pruned: no better time
            last_error=row.last_error,
        )
        for row, first in rows
    ]


def list_deliveries(
    session: Session,
    filters: Filters,
    *,
    before_id: str | None,
    limit: int,
    for_update: bool = False,
) -> list[DeliveryRecord]:
    """Newest first: delivery ids sort by the time they were made."""
    query = _records().where(*_conditions(filters))
    if before_id is not None:
        query = query.where(DeliveryRow.id < before_id)
    query = query.order_by(DeliveryRow.id.desc()).limit(limit)
    if for_update:
        query = query.with_for_update(of=DeliveryRow)
    return _with_attempt_times(session, list(session.execute(query)))


def get_delivery(session: Session, delivery_id: str, *, for_update: bool = False) -> DeliveryRecord:
    query = _records().where(DeliveryRow.id == delivery_id)
    if for_update:
        query = query.with_for_update(of=DeliveryRow)
    found = _with_attempt_times(session, list(session.execute(query)))
    if not found:
        raise errors.DeliveryNotFound(f"no delivery {delivery_id!r}")
    return found[0]


def attempts_of(session: Session, delivery_id: str) -> list[deliveries.Attempt]:
    """Every recorded attempt, oldest first."""
    rows = session.execute(
        select(DeliveryAttemptRow)
        .where(DeliveryAttemptRow.delivery_id == delivery_id)
        .order_by(DeliveryAttemptRow.id)
    ).scalars()
    return [
        deliveries.Attempt(
            attempted_at=row.attempted_at,
            ok=row.ok,
            status_code=row.status_code,
            error=row.error,
            latency_ms=row.latency_ms,
            response_excerpt=row.response_excerpt,
        )
        for row in rows
    ]


def redrive(session: Session, delivery_ids: list[str], *, now: datetime) -> int:
    """Make dead deliveries pending and due at ``now``, with ``now`` as the start of their
    maximum-age window (``domain/deliveries.py``); how many were dead."""
    result = session.execute(
        update(DeliveryRow)
        .where(DeliveryRow.id.in_(delivery_ids), DeliveryRow.status == _DEAD)
        .values(
            status=DeliveryStatus.PENDING.value,
            next_attempt_at=now,
            created_at=now,
            completed_at=None,
        )
        .execution_options(synchronize_session=False)  # the caller holds no rows to refresh
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Backlog:
    """How the outbox stands: what a monitoring system watches."""

    pending: int
    due: int  # pending, and next_attempt_at has passed: no worker has it in hand
    earliest_pending_at: datetime | None
    dead: int


def backlog(session: Session, now: datetime) -> Backlog:
    """Counts by status, from the partial indexes of pending and of dead deliveries: none of
    it reads the deliveries that were delivered."""
    pending, earliest = session.execute(
        select(func.count(), func.min(DeliveryRow.next_attempt_at)).where(
            is_pending(DeliveryRow.status)
        )
    ).one()
    due = session.scalar(
        select(func.count()).where(
            is_pending(DeliveryRow.status), DeliveryRow.next_attempt_at <= now
        )
    )
    dead = session.scalar(select(func.count()).where(DeliveryRow.status == _DEAD))
    return Backlog(pending=pending, due=due or 0, earliest_pending_at=earliest, dead=dead or 0)


def _records() -> Select[DeliveryRow, str, str]:
    return select(DeliveryRow, EventRow.type, EventRow.subject).join(
        EventRow, EventRow.id == DeliveryRow.event_id
    )


def _conditions(filters: Filters) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = []
    if filters.status is DeliveryStatus.PENDING:
        found.append(is_pending(DeliveryRow.status))
    elif filters.status is DeliveryStatus.DEAD:
        found.append(DeliveryRow.status == _DEAD)  # the partial index of dead letters
    elif filters.status is not None:
        found.append(DeliveryRow.status == filters.status.value)
    if filters.target_kind is not None:
        found.append(DeliveryRow.target_kind == filters.target_kind)
    if filters.event_type is not None:
        # Asked of each delivery's own event, not of the join: given ``events.type = ?``,
        # SQLite takes every event of the type from its index and sorts them all (millions
        # of approval.settled), instead of walking deliveries newest first.
        of_type = aliased(EventRow)
        found.append(
            exists().where(of_type.id == DeliveryRow.event_id, of_type.type == filters.event_type)
        )
    if filters.subject is not None:
        found.append(EventRow.subject == filters.subject)
    if filters.subscription_id is not None:
        found.append(DeliveryRow.subscription_id == filters.subscription_id)
    return found


def _with_attempt_times(session: Session, rows: list[Any]) -> list[DeliveryRecord]:
    """Records of ``(DeliveryRow, event type, subject)`` rows, with the times of their first
    failed and last attempt, read for all of them in one statement."""
    times: dict[str, tuple[datetime | None, datetime | None]] = {}
    if rows:
        attempted_at = DeliveryAttemptRow.attempted_at
        first_failure = func.min(case((DeliveryAttemptRow.ok, None), else_=attempted_at))
        query = (
            select(DeliveryAttemptRow.delivery_id, first_failure, func.max(attempted_at))
            .where(DeliveryAttemptRow.delivery_id.in_([row[0].id for row in rows]))
            .group_by(DeliveryAttemptRow.delivery_id)
        )
        times = {delivery_id: (first, last) for delivery_id, first, last in session.execute(query)}
    return [
        _record(row, event_type, subject, *times.get(row.id, (None, None)))
        for row, event_type, subject in rows
    ]


def _record(
    row: DeliveryRow,
    event_type: str,
    subject: str,
    first_failure: datetime | None,
    last_attempt: datetime | None,
) -> DeliveryRecord:
    status = DeliveryStatus(row.status)
    return DeliveryRecord(
        id=row.id,
        event_id=row.event_id,
        event_type=event_type,
        subject=subject,
        target_kind=row.target_kind,
        target=row.target,
        purpose=row.purpose,
        status=status,
        attempts=row.attempts,
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at if status is DeliveryStatus.PENDING else None,
        completed_at=row.completed_at,
        last_attempt_at=last_attempt,
        failing_since=deliveries.failing_since(status, first_failure),
        last_error=row.last_error,
    )


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
