"""The inbox's queries: a page of approvals by deadline, and how many there are per status.

Pages are keyset pages over ``(deadline_at, id)``, walked on the indexes of migration 0008
(``status, deadline_at, id`` and ``deadline_at, id``), so the thousandth page costs what the
first does and a new approval never shifts a page someone is reading. Counts stop at
``COUNT_CAP`` matches: past that a person needs a filter, not a number, and counting a
million rows on every page view would cost more than the page. A person who is not an admin
sees a few percent of the approvals, so a capped count still reads ``COUNT_CAP`` divided by
that share of index entries: the cap is kept small, and the service counts only views
without filters (``services/inbox``), or views read from candidates (below).

A page can also be read from a known set of candidates instead of the deadline order: the
approvals naming a person as approver (or requested by them), or whose titles contain a
searched text, when there are at most ``MATCH_CAP`` of them (``find_approvals_naming``,
``find_requested_by``, ``find_titles``). They are read by primary key, filtered, ordered and
counted per status, whatever share of a million approvals they are; a person who decides
little would otherwise have every count walk a status's whole index in vain. More
candidates than that are dense enough that walking the deadline order finds a page soon.

Text search is a case-insensitive substring match on the title. Searches of three characters
or more find their matches first, in the trigram index of migration 0009 (SQLite FTS5,
PostgreSQL pg_trgm). A search matching more titles than ``MATCH_CAP`` (a common word), or
shorter than three characters, tests titles on the rows the other filters and the deadline
order already walk: a page stops after ``limit`` matches, and a search that matches nothing
reads at most ``SEARCH_SCAN_LIMIT`` rows of the filtered set and says so
(``Page.searched_all``). docs/benchmarks.md has the numbers at a million approvals.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import and_, column, exists, func, or_, select, table
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement, Select
from sqlalchemy.sql.util import ClauseAdapter

from signoff import errors
from signoff.domain.approvals import Approval, Status
from signoff.store import approvals as store
from signoff.store.tables import ApprovalApproverRow, ApprovalRow

COUNT_CAP = 100
SEARCH_SCAN_LIMIT = 2_000
MATCH_CAP = 5_000
TRIGRAM = 3  # the index holds trigrams: a shorter text cannot be looked up in it

# SQLite's FTS5 table of titles (migration 0009), kept by triggers; not mapped.
_TITLES = table("approval_titles", column("approval_id"), column("title"))


@dataclass(frozen=True)
class Filters:
    """What the inbox shows. ``candidates``: when known, the ids of the only approvals that
    may match (read by key, not by walking the deadline order); ``text_found``: the
    candidates came from the title index, so each title already contains ``text``."""

    base: store.Filters
    team_id: str | None = None
    text: str | None = None
    candidates: frozenset[str] | None = None
    text_found: bool = False


@dataclass(frozen=True)
class Page:
    approvals: list[Approval]
    next_cursor: str | None
    previous_cursor: str | None
    searched_all: bool = True  # False: a text search stopped after SEARCH_SCAN_LIMIT rows


def list_page(
    session: Session,
    filters: Filters,
    *,
    cursor: str | None,
    latest_first: bool,
    limit: int,
) -> Page:
    """A page of approvals by deadline (soonest first, or latest first) after or before
    ``cursor`` (``n.`` or ``p.`` and a position), and the cursors of its neighbours."""
    backwards, position = _decode(cursor) if cursor else (False, None)
    descending = latest_first != backwards  # walking back reverses the order
    query = _filtered(filters)
    columns = query.selected_columns
    if position is not None:
        query = query.where(_beyond(columns, position, descending=descending))
    order = (columns.deadline_at, columns.id)
    query = query.order_by(*(c.desc() if descending else c.asc() for c in order))
    searched_all = True
    if filters.text and filters.candidates is None:
        # Bound the rows a search reads: the filtered set in deadline order, at most
        # SEARCH_SCAN_LIMIT of them, then the title test on those.
        walked = query.limit(SEARCH_SCAN_LIMIT).subquery()
        # A subquery's order is not kept by SQL: the outer query says it again.
        outer = (walked.c.deadline_at, walked.c.id)
        inner = (
            select(walked)
            .where(_title_has(walked.c.title, filters.text))
            .order_by(*(c.desc() if descending else c.asc() for c in outer))
            .limit(limit + 1)
        )
        rows = list(session.execute(inner))
        if len(rows) <= limit:  # fewer matches than a page: did the bound cut the search?
            scanned = session.scalar(select(func.count()).select_from(walked)) or 0
            searched_all = scanned < SEARCH_SCAN_LIMIT
    else:
        rows = list(session.execute(query.limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    if backwards:
        rows.reverse()
    page = store.approvals_of_rows(session, rows)
    if not page:
        return Page([], None, None, searched_all)
    first, last = page[0], page[-1]
    has_next = more if not backwards else True
    has_previous = more if backwards else position is not None
    return Page(
        page,
        _encode(False, last.deadline_at, last.id) if has_next else None,
        _encode(True, first.deadline_at, first.id) if has_previous else None,
        searched_all,
    )


def find_titles(session: Session, text: str) -> frozenset[str] | None:
    """The ids of the approvals whose titles contain ``text`` (ignoring case), looked up in
    the trigram index; None when ``text`` is too short for the index or more than
    ``MATCH_CAP`` titles contain it."""
    if len(text) < TRIGRAM:
        return None
    if session.get_bind().dialect.name == "sqlite":
        # A phrase of the text's trigrams, in FTS5's quoting: the text as a substring.
        phrase = '"' + text.replace('"', '""') + '"'
        query = select(_TITLES.c.approval_id).where(_TITLES.c.title.op("MATCH")(phrase))
    else:
        query = select(ApprovalRow.id).where(_title_has(ApprovalRow.title, text))
    # One pass: the index lookup is most of the cost, and counting first would do it twice.
    return _at_most_cap(session, query, count_first=False)


def find_approvals_naming(
    session: Session, user_id: str, team_ids: frozenset[str]
) -> frozenset[str] | None:
    """The ids of the approvals naming this user or one of their teams as an approver (from
    the approvers' index alone); None when there are more than ``MATCH_CAP``."""
    query = select(ApprovalApproverRow.approval_id).where(store.names_approver(user_id, team_ids))
    return _at_most_cap(session, query)  # an approval naming both user and team counts twice


def find_requested_by(session: Session, user_id: str) -> frozenset[str] | None:
    """The ids of the approvals this user requested; None when there are more than
    ``MATCH_CAP``."""
    query = select(ApprovalRow.id).where(ApprovalRow.requester_id == user_id)
    return _at_most_cap(session, query)


def _at_most_cap(
    session: Session, ids: Select[Any], *, count_first: bool = True
) -> frozenset[str] | None:
    """The ids ``ids`` selects, or None when it selects more than ``MATCH_CAP`` rows. With
    ``count_first``, rows are counted in the database first, so a set too big to use is never
    sent to Python (most of a cheap probe's cost on PostgreSQL: 21 ms down to 6 for a person
    named by 40,000 approvals)."""
    if count_first:
        capped = ids.limit(MATCH_CAP + 1).subquery()
        if (session.scalar(select(func.count()).select_from(capped)) or 0) > MATCH_CAP:
            return None
    found = list(session.scalars(ids.limit(MATCH_CAP + 1)))
    return frozenset(found) if len(found) <= MATCH_CAP else None


def count_by_status(session: Session, filters: Filters) -> dict[Status, int]:
    """How many approvals match ``filters`` in each status (any status filter aside), each
    count stopping at ``COUNT_CAP + 1``. Not for a text search without candidates: each
    count would read its own ``SEARCH_SCAN_LIMIT`` rows (the page says how far its search
    went instead)."""
    counts: dict[Status, int] = {}
    for status in Status:
        one = replace(filters, base=_with_status(filters.base, status))
        query = _filtered(one)
        query = query.with_only_columns(query.selected_columns.id)
        capped = query.limit(COUNT_CAP + 1).subquery()
        counts[status] = session.scalar(select(func.count()).select_from(capped)) or 0
    return counts


def count(session: Session, filters: Filters, *, cap: int) -> int:
    """How many approvals match ``filters``, stopping at ``cap + 1`` (reads at most that
    many index entries, however many match)."""
    query = _filtered(filters)
    capped = query.with_only_columns(query.selected_columns.id).limit(cap + 1).subquery()
    return session.scalar(select(func.count()).select_from(capped)) or 0


def _with_status(base: store.Filters, status: Status) -> store.Filters:
    """``base`` for another status tab. In the "to decide" view the Pending tab lists what
    still waits for my decision and the others what I was asked to decide, whichever tab
    ``base`` came from (so the Pending count is the same on every tab)."""
    me = base.decidable_by or base.approver
    pending = status is Status.PENDING
    return store.Filters(
        status=status,
        label=base.label,
        requester_id=base.requester_id,
        decidable_by=me if pending else None,
        visible_to=base.visible_to,
        approver=None if pending else me,
    )


def _filtered(filters: Filters) -> Select[Any]:
    """The approvals ``filters`` match, and no order. With ``candidates``, the filters test
    only those approvals: read by primary key in a subquery of their own (its LIMIT keeps
    SQLite from merging it into the outer query, which without statistics would walk a
    status's whole index in deadline order instead, testing each id against the set)."""
    where = store.conditions(filters.base)
    if filters.team_id is not None:
        where.append(
            exists().where(
                ApprovalApproverRow.approval_id == ApprovalRow.id,
                ApprovalApproverRow.kind == "team",
                ApprovalApproverRow.ref_id == filters.team_id,
            )
        )
    approvals = ApprovalRow.__table__
    if filters.candidates is None:
        return select(approvals).where(*where)
    if filters.text and not filters.text_found:
        where.append(_title_has(ApprovalRow.title, filters.text))  # a few thousand at most
    found = (
        select(approvals)
        .where(approvals.c.id.in_(sorted(filters.candidates)))
        .limit(len(filters.candidates))
        .subquery("found")
    )
    adapter = ClauseAdapter(found)  # the conditions, said of the subquery's rows
    return select(found).where(*(adapter.traverse(condition) for condition in where))


def _title_has(column: Any, text: str) -> ColumnElement[bool]:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return func.lower(column).like(f"%{escaped.lower()}%", escape="\\")


def _beyond(
    columns: Any, position: tuple[datetime, str], *, descending: bool
) -> ColumnElement[bool]:
    deadline_at, approval_id = position
    if descending:
        return or_(
            columns.deadline_at < deadline_at,
            and_(columns.deadline_at == deadline_at, columns.id < approval_id),
        )
    return or_(
        columns.deadline_at > deadline_at,
        and_(columns.deadline_at == deadline_at, columns.id > approval_id),
    )


def _encode(backwards: bool, deadline_at: datetime, approval_id: str) -> str:
    raw = json.dumps([deadline_at.isoformat(), approval_id]).encode()
    return ("p." if backwards else "n.") + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> tuple[bool, tuple[datetime, str]]:
    try:
        direction, _, token = cursor.partition(".")
        if direction not in ("n", "p"):
            raise ValueError(direction)
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        return direction == "p", store.cursor_key(json.loads(raw))
    except (ValueError, TypeError) as exc:
        raise errors.InvalidInput(
            "the cursor is not one this server issued", field="cursor"
        ) from exc
