"""Approvals, their approvers, labels and decisions."""

from __future__ import annotations

import base64
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, bindparam, exists, func, insert, or_, select, text, update
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from signoff import errors
from signoff.domain import approvals, policies
from signoff.domain.approvals import Approval, Decision
from signoff.domain.policies import ApproverRef
from signoff.domain.reminders import Timer
from signoff.store import reminders
from signoff.store.tables import (
    ApprovalApproverRow,
    ApprovalLabelRow,
    ApprovalRow,
    DecisionRow,
    UTCDateTime,
    is_pending,
    table,
)

# The statements every create and decide runs, built once: building a statement and its
# cache key per call cost more than executing it.
_approvals = table(ApprovalRow)
_decisions = table(DecisionRow)
_INSERT_APPROVAL = insert(_approvals)
_INSERT_APPROVERS = insert(table(ApprovalApproverRow))
_INSERT_LABELS = insert(table(ApprovalLabelRow))
_INSERT_DECISION = insert(_decisions)
_BY_ID = select(_approvals).where(_approvals.c.id == bindparam("id"))
_BY_ID_FOR_UPDATE = _BY_ID.with_for_update()
_BY_IDEMPOTENCY_KEY = select(_approvals).where(
    _approvals.c.requester_id == bindparam("requester_id"),
    _approvals.c.idempotency_key == bindparam("key"),
)
_DECISIONS_OF = (
    select(_decisions)
    .where(_decisions.c.approval_id.in_(bindparam("ids", expanding=True)))
    .order_by(_decisions.c.decided_at, _decisions.c.id)
)
_DUE = (
    "SELECT id FROM approvals{hint} WHERE status = 'pending' AND due_at <= :now"
    " ORDER BY due_at LIMIT :limit"
)
_NEXT_DUE = "SELECT due_at FROM approvals{hint} WHERE status = 'pending' ORDER BY due_at LIMIT 1"
_SETTLE = (
    update(_approvals)
    .where(_approvals.c.id == bindparam("approval_id"), _approvals.c.status == "pending")
    .values(
        status=bindparam("new_status"),
        outcome=bindparam("new_outcome"),
        settled_at=bindparam("at"),
    )
)


@dataclass(frozen=True)
class Filters:
    status: approvals.Status | None = None
    label: str | None = None
    requester_id: str | None = None
    decidable_by: tuple[str, frozenset[str]] | None = None  # (user id, team ids)
    visible_to: tuple[str, frozenset[str]] | None = None  # None: everything (admins)
    approver: tuple[str, frozenset[str]] | None = None  # names this user or a team of theirs


def insert_approval(
    session: Session, approval: Approval, idempotency_key: str | None, request_hash: str | None
) -> None:
    insert_approvals(session, [(approval, idempotency_key, request_hash)])


def insert_approvals(session: Session, rows: list[tuple[Approval, str | None, str | None]]) -> None:
    """Insert approvals with their approvers and labels, three statements for any number
    (a create inserts one; bench/inbox.py fills a database with a million)."""
    session.execute(_INSERT_APPROVAL, [_approval_values(*row) for row in rows])
    session.execute(
        _INSERT_APPROVERS,
        [
            {"approval_id": approval.id, "kind": r.kind, "ref_id": r.id}
            for approval, _, _ in rows
            for r in approval.approvers
        ],
    )
    labels = [
        {"approval_id": approval.id, "label": label}
        for approval, _, _ in rows
        for label in approval.labels
    ]
    if labels:
        session.execute(_INSERT_LABELS, labels)


def _approval_values(
    approval: Approval, idempotency_key: str | None, request_hash: str | None
) -> dict[str, Any]:
    return {
        "id": approval.id,
        "title": approval.title,
        "body": approval.body,
        "context": approval.context,
        "labels": approval.labels,
        "requester_id": approval.requester_id,
        "approvers": [{"kind": r.kind, "id": r.id, "name": r.name} for r in approval.approvers],
        "policy": approval.policy.as_json(),
        "status": approval.status.value,
        "on_timeout": approval.on_timeout.value,
        "created_at": approval.created_at,
        "deadline_at": approval.deadline_at,
        "heartbeat_timeout_seconds": approval.heartbeat_timeout_seconds,
        "heartbeat_at": approval.heartbeat_at,
        "due_at": approval.due_at,
        "callback_url": approval.callback_url,
        "outcome": approval.outcome,
        "settled_at": approval.settled_at,
        "idempotency_key": idempotency_key,
        "request_hash": request_hash,
    }


def find_by_idempotency_key(
    session: Session, requester_id: str, key: str
) -> tuple[Approval, str | None] | None:
    row = session.execute(
        _BY_IDEMPOTENCY_KEY, {"requester_id": requester_id, "key": key}
    ).one_or_none()
    return (_with_decisions(session, [row])[0], row.request_hash) if row else None


def get_approval(session: Session, approval_id: str, *, for_update: bool = False) -> Approval:
    query = _BY_ID_FOR_UPDATE if for_update else _BY_ID
    row = session.execute(query, {"id": approval_id}).one_or_none()
    if row is None:
        raise errors.ApprovalNotFound(f"no approval {approval_id!r}")
    return _with_decisions(session, [row])[0]


def insert_decision(session: Session, decision: Decision) -> None:
    session.execute(
        _INSERT_DECISION,
        {
            "id": decision.id,
            "approval_id": decision.approval_id,
            "user_id": decision.user_id,
            "user_email": decision.user_email,
            "verdict": decision.verdict.value,
            "comment": decision.comment,
            "form": decision.form,
            "channel": decision.channel.value,
            "decided_at": decision.decided_at,
        },
    )


def settle(
    session: Session,
    approval_id: str,
    status: approvals.Status,
    outcome: dict[str, object],
    at: datetime,
) -> bool:
    """Move a pending approval to ``status``; False if it had already left pending."""
    result = session.execute(
        _SETTLE,
        {"approval_id": approval_id, "new_status": status.value, "new_outcome": outcome, "at": at},
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def record_heartbeat(session: Session, approval: Approval) -> None:
    session.execute(
        update(ApprovalRow)
        .where(ApprovalRow.id == approval.id)
        .values(heartbeat_at=approval.heartbeat_at, due_at=approval.due_at)
    )


def due_approval_ids(session: Session, now: datetime, limit: int) -> list[str]:
    query = text(_DUE.format(hint=_due_index_hint(session))).bindparams(
        bindparam("now", type_=UTCDateTime())
    )
    return list(session.scalars(query, {"now": now, "limit": limit}))


def next_due_at(session: Session) -> datetime | None:
    query = text(_NEXT_DUE.format(hint=_due_index_hint(session))).columns(due_at=UTCDateTime())
    return session.scalars(query).first()


def _due_index_hint(session: Session) -> str:
    """The scheduler's queries must walk the partial index of pending deadlines. Without
    statistics SQLite prefers the status index and sorts every pending row (a core's worth
    at 100,000 pending approvals), so there it is told which index to use."""
    return (
        " INDEXED BY ix_approvals_due_at_pending"
        if session.get_bind().dialect.name == "sqlite"
        else ""
    )


def count_pending(session: Session) -> int:
    return session.scalar(select(func.count()).where(is_pending(ApprovalRow.status))) or 0


def settled_among(session: Session, approval_ids: list[str]) -> list[str]:
    """Which of ``approval_ids`` are no longer pending (one query for any number of waiters)."""
    return list(
        session.scalars(
            select(ApprovalRow.id).where(
                ApprovalRow.id.in_(approval_ids),
                ApprovalRow.status != approvals.Status.PENDING.value,
            )
        )
    )


def list_approvals(
    session: Session, filters: Filters, *, cursor: str | None, limit: int
) -> tuple[list[Approval], str | None]:
    """A page of approvals, newest first, and the cursor of the next page."""
    query = select(ApprovalRow).where(*conditions(filters))
    if cursor:
        created_at, approval_id = _decode_cursor(cursor)
        query = query.where(
            or_(
                ApprovalRow.created_at < created_at,
                and_(ApprovalRow.created_at == created_at, ApprovalRow.id < approval_id),
            )
        )
    query = query.order_by(ApprovalRow.created_at.desc(), ApprovalRow.id.desc()).limit(limit + 1)
    rows = list(session.scalars(query))
    page, more = rows[:limit], len(rows) > limit
    next_cursor = _encode_cursor(page[-1].created_at, page[-1].id) if more else None
    return _with_decisions(session, page), next_cursor


def conditions(filters: Filters) -> list[ColumnElement[bool]]:
    """The WHERE clauses of ``filters`` on the approvals table."""
    found: list[ColumnElement[bool]] = []
    if filters.status is not None:
        found.append(ApprovalRow.status == filters.status.value)
    if filters.label is not None:
        found.append(
            exists().where(
                ApprovalLabelRow.approval_id == ApprovalRow.id,
                ApprovalLabelRow.label == filters.label,
            )
        )
    if filters.requester_id is not None:
        found.append(ApprovalRow.requester_id == filters.requester_id)
    if filters.visible_to is not None:
        user_id, team_ids = filters.visible_to
        found.append(or_(ApprovalRow.requester_id == user_id, _approver_is(user_id, team_ids)))
    if filters.approver is not None:
        found.append(_approver_is(*filters.approver))
    if filters.decidable_by is not None:
        user_id, team_ids = filters.decidable_by
        found += [
            ApprovalRow.status == approvals.Status.PENDING.value,
            _approver_is(user_id, team_ids),
            or_(
                ApprovalRow.requester_id != user_id,
                ApprovalRow.policy["requester_can_decide"].as_boolean(),
            ),
            ~exists().where(
                DecisionRow.approval_id == ApprovalRow.id, DecisionRow.user_id == user_id
            ),
        ]
    return found


def _approver_is(user_id: str, team_ids: frozenset[str]) -> ColumnElement[bool]:
    return exists().where(
        ApprovalApproverRow.approval_id == ApprovalRow.id, names_approver(user_id, team_ids)
    )


def names_approver(user_id: str, team_ids: frozenset[str]) -> ColumnElement[bool]:
    """The ``approval_approvers`` rows naming this user or one of their teams."""
    match = and_(ApprovalApproverRow.kind == "user", ApprovalApproverRow.ref_id == user_id)
    if team_ids:
        match = or_(
            match,
            and_(
                ApprovalApproverRow.kind == "team", ApprovalApproverRow.ref_id.in_(sorted(team_ids))
            ),
        )
    return match


def _encode_cursor(created_at: datetime, approval_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), approval_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return cursor_key(json.loads(raw))
    except (ValueError, TypeError) as exc:
        raise errors.InvalidInput(
            "the cursor is not one this server issued", field="cursor"
        ) from exc


def cursor_key(decoded: Any) -> tuple[datetime, str]:
    """The (moment, approval id) a decoded cursor holds, the moment in UTC; ``ValueError``
    when it holds anything else (a tampered cursor: not a pair, a moment without a time zone
    or one that is out of range in UTC)."""
    if not isinstance(decoded, list) or len(decoded) != 2:
        raise ValueError("a cursor holds a moment and an approval id")
    moment, approval_id = decoded
    if not isinstance(moment, str) or not isinstance(approval_id, str):
        raise ValueError("a cursor holds a moment and an approval id")
    found = datetime.fromisoformat(moment)
    if found.tzinfo is None:
        raise ValueError("a cursor's moment has a time zone")
    try:
        return found.astimezone(UTC), approval_id
    except OverflowError as exc:
        raise ValueError("a cursor's moment is out of range") from exc


def approvals_of_rows(session: Session, rows: list[Any]) -> list[Approval]:
    return _with_decisions(session, rows)


def _with_decisions(session: Session, rows: list[Any]) -> list[Approval]:
    """Approvals from rows of the approvals table (ORM objects or Core rows), with their
    decisions and their timers, each read in one statement."""
    by_approval: dict[str, list[Decision]] = defaultdict(list)
    timers: dict[str, list[Timer]] = {}
    if rows:
        ids = [row.id for row in rows]
        for d in session.execute(_DECISIONS_OF, {"ids": ids}):
            by_approval[d.approval_id].append(_decision(d))
        timers = reminders.timers_of(session, ids)
    found = [_approval(row, by_approval[row.id]) for row in rows]
    for approval in found:
        approval.timers = timers.get(approval.id, [])
    return found


def _decision(row: Any) -> Decision:
    return Decision(
        id=row.id,
        approval_id=row.approval_id,
        user_id=row.user_id,
        user_email=row.user_email,
        verdict=approvals.Verdict(row.verdict),
        comment=row.comment,
        form=row.form,
        channel=approvals.Channel(row.channel),
        decided_at=row.decided_at,
    )


def _approval(row: Any, decisions: list[Decision]) -> Approval:
    return Approval(
        id=row.id,
        title=row.title,
        body=row.body,
        context=row.context,
        labels=list(row.labels),
        requester_id=row.requester_id,
        approvers=[ApproverRef(**ref) for ref in row.approvers],
        policy=policies.Policy(**row.policy),
        status=approvals.Status(row.status),
        on_timeout=policies.OnTimeout(row.on_timeout),
        created_at=row.created_at,
        deadline_at=row.deadline_at,
        heartbeat_timeout_seconds=row.heartbeat_timeout_seconds,
        heartbeat_at=row.heartbeat_at,
        callback_url=row.callback_url,
        outcome=row.outcome,
        settled_at=row.settled_at,
        decisions=decisions,
    )


def pending_approval_ids_of_team(session: Session, team_id: str, *, limit: int) -> list[str]:
    """Some pending approvals that name ``team_id`` as an approver."""
    query = (
        select(ApprovalApproverRow.approval_id)
        .join(ApprovalRow, ApprovalRow.id == ApprovalApproverRow.approval_id)
        .where(
            ApprovalApproverRow.kind == "team",
            ApprovalApproverRow.ref_id == team_id,
            is_pending(ApprovalRow.status),
        )
        .limit(limit)
    )
    return list(session.scalars(query))
