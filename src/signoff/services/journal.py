"""The two traces every change leaves in its own transaction: an event, for machines (the
outbox that webhooks and notifications are delivered from), and an audit entry, for people.

Events are written at once, with a delivery to every enabled subscription whose filter
matches (``domain/subscriptions.py``), so an event and its deliveries commit together or not
at all. The enabled subscriptions are read once per transaction, on its first public event,
and kept in the session for the events after it. Audit entries are collected and appended
together just before commit, which takes the audit chain's lock once per transaction and for
the shortest time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from signoff.domain import deliveries, events, ids, subscriptions
from signoff.domain.principals import Context
from signoff.store import audit, outbox
from signoff.store import subscriptions as subscriptions_store
from signoff.store.engine import Database

_PENDING = "signoff.audit"
_SUBSCRIPTIONS = "signoff.subscriptions"
DELIVERY = "delivery"  # notification topic: a delivery is due
SUBSCRIPTION = deliveries.Purpose.SUBSCRIPTION


def record(
    session: Session,
    ctx: Context,
    *,
    at: datetime,
    action: str,
    object_type: str,
    object_id: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    event_type: str | None = None,
    event_data: dict[str, Any] | None = None,
) -> events.Event | None:
    """Write the event (when ``event_type`` is given) and its subscriptions' deliveries, and
    the audit entry; return the event."""
    event = None
    if event_type is not None:
        event = events.Event(
            id=ids.new_sortable_id("evt"),
            type=event_type,
            subject=object_id,
            actor=ctx.actor,
            data=event_data or {},
            occurred_at=at,
            version=events.event_type(event_type).version,
        )
        outbox.insert_event(session, event)
        _fan_out(session, event)
    pending: list[dict[str, Any]] = session.info.setdefault(_PENDING, [])
    pending.append(
        {
            "at": at,
            "actor": ctx.actor,
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "before": before,
            "after": after,
            "request_id": ctx.request_id,
            "client_addr": ctx.client_addr,
        }
    )
    Database.before_commit(session, _PENDING, _append_audit)
    return event


def _append_audit(session: Session) -> None:
    audit.append(session, session.info.pop(_PENDING))


def _fan_out(session: Session, event: events.Event) -> None:
    if event.is_internal:
        return  # never to subscriptions: no need to read them
    if _SUBSCRIPTIONS not in session.info:
        session.info[_SUBSCRIPTIONS] = subscriptions_store.list_enabled(session)
    matched = subscriptions.deliveries_for(event, session.info[_SUBSCRIPTIONS])
    if matched:
        new = [
            outbox.NewDelivery(
                ids.new_sortable_id("msg"), kind, target, SUBSCRIPTION, subscription.id
            )
            for subscription, kind, target in matched
        ]
        outbox.insert_deliveries(session, event, new)
        Database.notify(session, DELIVERY)


def deliver(
    db: Database,
    session: Session,
    event: events.Event,
    target_kind: deliveries.TargetKind,
    purpose: deliveries.Purpose,
    *targets: str,
) -> None:
    """Hand ``event`` to the dispatcher for each of ``targets``, in the event's transaction;
    ``purpose`` says why (``SUBSCRIPTION`` only for updates of what a subscription's delivery
    posted, such as a Slack message; what subscriptions match is the fan-out's)."""
    if not targets:
        return
    new = [
        outbox.NewDelivery(ids.new_sortable_id("msg"), target_kind, target, purpose)
        for target in targets
    ]
    outbox.insert_deliveries(session, event, new)
    db.notify(session, DELIVERY)
