"""The queries the scheduler and dispatcher run while idle use the partial indexes on pending
rows (and on scheduled reminders and escalations): with 100,000 pending approvals, a scan and
sort would cost a core (see ``store.tables.is_pending``); a create that names a policy finds
it by index; a metrics scrape counts pending rows from those indexes; the deliveries listing
walks deliveries newest first by their key and sorts nothing, whatever it filters on.
SQLite's plans are checked; PostgreSQL plans the same SQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from signoff.domain.approvals import Status
from signoff.domain.deliveries import DeliveryStatus
from signoff.store import approvals, outbox, policies, principals, reminders
from signoff.store.engine import Database


def explained(session: Session, run: Callable[[Session], object]) -> list[str]:
    """SQLite's plan of each statement ``run`` executes, one line per statement."""
    conn = session.connection()
    statements: list[tuple[str, object]] = []

    def capture(_conn: object, _cursor: object, sql: str, params: object, *_: object) -> None:
        statements.append((sql, params))

    event.listen(conn, "before_cursor_execute", capture)
    try:
        run(session)
    finally:
        event.remove(conn, "before_cursor_execute", capture)
    return [
        " / ".join(row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params))  # type: ignore[arg-type]
        for sql, params in statements
    ]


@pytest.fixture
def sqlite(db: Database) -> Database:
    if not db.is_sqlite:
        pytest.skip("reads SQLite's EXPLAIN QUERY PLAN")
    return db


@pytest.fixture
def plans(sqlite: Database) -> list[str]:
    seen: list[str] = []
    with sqlite.read() as session:
        now = datetime.now(UTC)
        seen += explained(session, approvals.next_due_at)
        seen += explained(session, lambda s: approvals.due_approval_ids(s, now, 200))
        seen += explained(session, outbox.next_attempt_at)
        seen += explained(session, reminders.next_due_at)
        seen += explained(session, lambda s: reminders.due_timers(s, now, 200))
    with sqlite.write() as session:
        seen += explained(
            session, lambda s: outbox.claim_due(s, now=now, lease=timedelta(1), limit=10)
        )
    return seen


def test_idle_queries_use_the_partial_indexes_and_sort_nothing(plans):
    next_due, due_ids, next_attempt, next_timer, due_timers, claim = plans[:6]
    assert "ix_approvals_due_at_pending" in next_due
    assert "ix_approvals_due_at_pending" in due_ids
    assert "ix_deliveries_next_attempt_at_pending" in next_attempt
    assert "ix_approval_timers_due_at_scheduled" in next_timer
    assert "ix_approval_timers_due_at_scheduled" in due_timers
    assert "ix_deliveries_next_attempt_at_pending" in claim
    assert not any("TEMP B-TREE" in plan for plan in plans), plans


def test_an_approval_naming_a_policy_finds_it_by_the_unique_index_on_names(sqlite):
    with sqlite.read() as session:
        (plan,) = explained(session, lambda s: policies.find_policy(s, "prod-promotion"))
    assert plan.startswith("SEARCH policies USING INDEX"), plan
    assert "(name=?)" in plan


def test_a_metrics_scrape_counts_pending_rows_from_indexes(sqlite):
    with sqlite.read() as session:
        pending, due, dead = explained(session, lambda s: outbox.backlog(s, datetime.now(UTC)))
        (approvals_pending,) = explained(session, approvals.count_pending)
    assert "USING INDEX ix_deliveries_next_attempt_at_pending" in pending
    assert "ix_deliveries_next_attempt_at_pending (next_attempt_at<?)" in due
    assert dead == "SCAN deliveries USING INDEX ix_deliveries_id_dead"  # dead rows only
    # Either index reads the pending approvals only.
    assert approvals_pending.startswith("SEARCH approvals USING COVERING INDEX") or (
        approvals_pending.startswith("SCAN approvals USING COVERING INDEX ix_approvals_due_at")
    ), approvals_pending


@pytest.mark.parametrize(
    "filters",
    [
        outbox.Filters(),
        outbox.Filters(status=DeliveryStatus.DEAD),
        outbox.Filters(status=DeliveryStatus.PENDING, target_kind="callback"),
        outbox.Filters(event_type="approval.settled"),
    ],
)
def test_the_deliveries_listing_walks_their_key_newest_first(sqlite, filters):
    with sqlite.read() as session:
        (plan,) = explained(
            session, lambda s: outbox.list_deliveries(s, filters, before_id="msg_z", limit=51)
        )
    index = "ix_deliveries_id_dead" if filters.status is DeliveryStatus.DEAD else None
    assert plan.startswith(
        f"SEARCH deliveries USING INDEX {index or 'sqlite_autoindex_deliveries_1'} (id<?)"
    )
    assert "TEMP B-TREE" not in plan, plan


def test_the_deliveries_of_one_subject_come_from_the_subject_index(sqlite):
    with sqlite.read() as session:
        (plan,) = explained(
            session,
            lambda s: outbox.list_deliveries(
                s, outbox.Filters(subject="ap_1"), before_id=None, limit=51
            ),
        )
    assert plan.startswith("SEARCH events USING INDEX ix_events_subject (subject=?)"), plan


def test_whom_a_create_emails_is_found_by_primary_key_and_the_members_index(sqlite):
    with sqlite.read() as session:
        (users_only,) = explained(
            session, lambda s: principals.active_people_among(s, ["usr_1", "usr_2"], [])
        )
        (with_teams,) = explained(
            session, lambda s: principals.active_people_among(s, ["usr_1"], ["team_1", "team_2"])
        )
    assert users_only.startswith("SEARCH users USING INDEX"), users_only
    assert "SCAN" not in users_only
    assert "SEARCH team_members USING COVERING INDEX" in with_teams, with_teams
    assert "SCAN users" not in with_teams
    assert "TEMP B-TREE" not in users_only + with_teams


def _inbox_filters(**base: object) -> object:
    from signoff.store import inbox

    return inbox.Filters(base=approvals.Filters(**base))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        ({"status": Status.PENDING}, "ix_approvals_status_deadline_at_id"),
        ({"status": Status.APPROVED, "label": "etl"}, "ix_approvals_status_deadline_at_id"),
        ({"visible_to": ("usr_1", frozenset({"team_1"}))}, "ix_approvals_deadline_at_id"),
        (
            {"status": Status.PENDING, "decidable_by": ("usr_1", frozenset({"team_1"}))},
            "ix_approvals_status_deadline_at_id",
        ),
    ],
)
@pytest.mark.parametrize("latest_first", [False, True])
@pytest.mark.parametrize("cursor", [None, "n.WyIyMDI2LTExLTI1VDAwOjAwOjAwKzAwOjAwIiwgImFwXzEiXQ"])
def test_an_inbox_page_walks_the_deadline_index_and_sorts_nothing(
    sqlite, filters, index, latest_first, cursor
):
    from signoff.store import inbox

    with sqlite.read() as session:
        page, *_decisions = explained(
            session,
            lambda s: inbox.list_page(
                s, _inbox_filters(**filters), cursor=cursor, latest_first=latest_first, limit=25
            ),
        )
    assert f"approvals USING INDEX {index}" in page, page
    assert "TEMP B-TREE" not in page, page


def test_the_admin_overview_counts_pending_approvals_from_the_index_with_a_cap(sqlite):
    from signoff.store import inbox

    with sqlite.read() as session:
        (plan,) = explained(
            session, lambda s: inbox.count(s, _inbox_filters(status=Status.PENDING), cap=999)
        )
    assert "USING COVERING INDEX ix_approvals_status_deadline_at_id" in plan, plan


def test_a_text_search_says_its_order_on_the_outer_query(db):
    """SQL keeps no order from a subquery: the page of matches is ordered where it is read."""
    from signoff.store import inbox

    seen: list[str] = []

    def capture(_conn: object, _cursor: object, sql: str, *_: object) -> None:
        seen.append(sql)

    filters = inbox.Filters(base=approvals.Filters(status=Status.PENDING), text="batch")
    with db.read() as session:
        conn = session.connection()
        event.listen(conn, "before_cursor_execute", capture)
        try:
            for latest_first in (False, True):
                inbox.list_page(session, filters, cursor=None, latest_first=latest_first, limit=5)
        finally:
            event.remove(conn, "before_cursor_execute", capture)
    searches = [sql for sql in seen if "LIKE" in sql]
    assert len(searches) == 2, seen
    for sql, order in zip(searches, ("ASC", "DESC"), strict=True):
        outer = sql.rsplit(") AS anon_1", 1)[-1]  # after the subquery
        assert f"ORDER BY anon_1.deadline_at {order}, anon_1.id {order}" in outer, sql


def test_an_approvals_notification_summary_is_one_statement_by_index(sqlite):
    with sqlite.read() as session:
        (plan,) = explained(session, lambda s: outbox.failing_of_subject(s, "ap_1"))
    assert plan.startswith(
        "SEARCH events USING INDEX ix_events_subject (subject=?) / "
        "SEARCH deliveries USING INDEX ix_deliveries_event_id (event_id=?)"
    ), plan
    assert "SEARCH delivery_attempts USING INDEX ix_delivery_attempts_delivery_id" in plan, plan
    assert "SCAN" not in plan, plan


def test_a_title_search_looks_titles_up_in_the_trigram_index(sqlite):
    from signoff.store import inbox

    with sqlite.read() as session:
        (plan,) = explained(session, lambda s: inbox.find_titles(s, "customer 42"))
    assert plan.startswith("SCAN approval_titles VIRTUAL TABLE INDEX"), plan


def test_a_persons_approvals_are_found_in_the_approvers_index_alone(sqlite):
    from signoff.store import inbox

    with sqlite.read() as session:
        plans = explained(
            session, lambda s: inbox.find_approvals_naming(s, "usr_1", frozenset({"team_1"}))
        )
    for plan in plans:  # the capped count, then the ids
        assert "USING COVERING INDEX ix_approval_approvers_ref" in plan, plan
        assert "SCAN approval" not in plan, plan  # (the count scans its own subquery)


@pytest.mark.parametrize(
    "filters",
    [
        {"status": Status.APPROVED},
        {"status": Status.PENDING, "decidable_by": ("usr_1", frozenset({"team_1"}))},
        {"visible_to": ("usr_1", frozenset({"team_1"}))},
    ],
)
@pytest.mark.parametrize("text_found", [True, False])
def test_candidates_are_read_by_key_not_by_walking_a_status(sqlite, filters, text_found):
    """Without statistics (SQLite has none until ANALYZE), a status test looks selective: the
    candidates (a title search's, or a person's approvals) must still be read by primary key,
    never by walking the status index."""
    from signoff.store import inbox

    found = inbox.Filters(
        base=approvals.Filters(**filters),
        text="batch",
        candidates=frozenset({"ap_1", "ap_2"}),
        text_found=text_found,
    )
    with sqlite.read() as session:
        page, *_decisions = explained(
            session, lambda s: inbox.list_page(s, found, cursor=None, latest_first=False, limit=25)
        )
        counts = explained(session, lambda s: inbox.count_by_status(s, found))
    for plan in [page, *counts]:
        assert "SEARCH approvals USING INDEX sqlite_autoindex_approvals_1 (id=?)" in plan, plan
        assert "deadline" not in plan, plan
