"""The numbers behind ``GET /metrics``: one read transaction of counts that the partial
indexes on pending rows serve (dead deliveries are the exception: see ``outbox.backlog``)."""

from __future__ import annotations

from datetime import UTC, datetime

from signoff.domain import metrics
from signoff.store import approvals, outbox
from signoff.store.engine import Database


def snapshot(db: Database) -> metrics.Snapshot:
    now = datetime.now(UTC)
    with db.read() as session:
        backlog = outbox.backlog(session, now)
        approvals_pending = approvals.count_pending(session)
    return metrics.Snapshot(
        deliveries_due=backlog.due,
        deliveries_pending=backlog.pending,
        deliveries_dead=backlog.dead,
        delivery_oldest_due_seconds=metrics.oldest_due_seconds(backlog.earliest_pending_at, now),
        approvals_pending=approvals_pending,
    )
