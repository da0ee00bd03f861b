"""The two traces every change leaves in its own transaction: an event, for machines (the
outbox that webhooks and notifications are delivered from), and an audit entry, for people."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from signoff.domain import events, ids
from signoff.domain.principals import Context
from signoff.store import audit, outbox


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
    """Write the event (when ``event_type`` is given) and the audit entry; return the event."""
    event = None
    if event_type is not None:
        event = events.Event(
            id=ids.new_sortable_id("evt"),
            type=event_type,
            subject=object_id,
            actor=ctx.actor,
            data=event_data or {},
            occurred_at=at,
        )
        outbox.insert_event(session, event)
    audit.append(
        session,
        at=at,
        actor=ctx.actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        before=before,
        after=after,
        request_id=ctx.request_id,
        client_addr=ctx.client_addr,
    )
    return event
