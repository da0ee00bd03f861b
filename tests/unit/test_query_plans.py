"""The queries the scheduler and dispatcher run while idle use the partial indexes on pending
rows: with 100,000 pending approvals, a scan and sort would cost a core (see
``store.tables.is_pending``). SQLite's plans are checked; PostgreSQL plans the same SQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from signoff.store import approvals, outbox
from signoff.store.engine import Database


@pytest.fixture
def plans(db: Database) -> list[str]:
    if not db.is_sqlite:
        pytest.skip("reads SQLite's EXPLAIN QUERY PLAN")
    seen: list[str] = []

    def explain(session: Session, run: object) -> None:
        conn = session.connection()
        statements: list[tuple[str, object]] = []

        def capture(_conn: object, _cursor: object, sql: str, params: object, *_: object) -> None:
            statements.append((sql, params))

        event.listen(conn, "before_cursor_execute", capture)
        try:
            run(session)  # type: ignore[operator]
        finally:
            event.remove(conn, "before_cursor_execute", capture)
        for sql, params in statements:
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params).all()  # type: ignore[arg-type]
            seen.append(" / ".join(row[3] for row in rows))

    with db.read() as session:
        now = datetime.now(UTC)
        explain(session, approvals.next_due_at)
        explain(session, lambda s: approvals.due_approval_ids(s, now, 200))
        explain(session, outbox.next_attempt_at)
    with db.write() as session:
        explain(session, lambda s: outbox.claim_due(s, now=now, lease=timedelta(1), limit=10))
    return seen


def test_idle_queries_use_the_partial_indexes_and_sort_nothing(plans):
    next_due, due_ids, next_attempt, claim = plans[:4]
    assert "ix_approvals_due_at_pending" in next_due
    assert "ix_approvals_due_at_pending" in due_ids
    assert "ix_deliveries_next_attempt_at_pending" in next_attempt
    assert "ix_deliveries_next_attempt_at_pending" in claim
    assert not any("TEMP B-TREE" in plan for plan in plans), plans
