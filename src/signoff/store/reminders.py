"""Approvals' timers (reminders and escalation): written with the approval, read with it,
found by the scheduler when due, and marked done or skipped exactly once."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, text, update
from sqlalchemy.orm import Session

from signoff.domain import policies, reminders
from signoff.domain.policies import ApproverRef
from signoff.domain.reminders import Timer
from signoff.store.tables import (
    ApprovalApproverRow,
    ApprovalRow,
    ApprovalTimerRow,
    JSONType,
    UTCDateTime,
    table,
)

_timers = table(ApprovalTimerRow)
_INSERT = insert(_timers)
_OF = (
    select(_timers)
    .where(_timers.c.approval_id.in_(bindparam("ids", expanding=True)))
    .order_by(_timers.c.approval_id, _timers.c.seq)
)
_FINISH = (
    update(_timers)
    .where(
        _timers.c.approval_id == bindparam("timer_approval_id"),
        _timers.c.seq == bindparam("timer_seq"),
        _timers.c.state == reminders.State.SCHEDULED.value,
    )
    .values(state=bindparam("new_state"), done_at=bindparam("at"))
)
_SKIP_ALL = (
    update(_timers)
    .where(
        _timers.c.approval_id == bindparam("timer_approval_id"),
        _timers.c.state == reminders.State.SCHEDULED.value,
    )
    .values(state=reminders.State.SKIPPED.value, done_at=bindparam("at"))
)
# Literal 'scheduled', so both databases can use the partial index.
_DUE = (
    "SELECT approval_id, seq FROM approval_timers{hint} WHERE state = 'scheduled'"
    " AND due_at <= :now ORDER BY due_at LIMIT :limit"
)
_NEXT_DUE = (
    "SELECT due_at FROM approval_timers{hint} WHERE state = 'scheduled' ORDER BY due_at LIMIT 1"
)


def insert_timers(session: Session, timers: list[Timer]) -> None:
    if timers:
        session.execute(_INSERT, [_row(timer) for timer in timers])


def timers_of(session: Session, approval_ids: list[str]) -> dict[str, list[Timer]]:
    """The timers of each of ``approval_ids``, in order (one statement)."""
    found: dict[str, list[Timer]] = defaultdict(list)
    if approval_ids:
        for row in session.execute(_OF, {"ids": approval_ids}):
            found[row.approval_id].append(_timer(row))
    return found


def due_timers(session: Session, now: datetime, limit: int) -> list[tuple[str, int]]:
    """(approval id, seq) of scheduled timers due by ``now``, earliest first."""
    query = text(_DUE.format(hint=_hint(session))).bindparams(bindparam("now", type_=UTCDateTime()))
    return [
        (row.approval_id, row.seq) for row in session.execute(query, {"now": now, "limit": limit})
    ]


def next_due_at(session: Session) -> datetime | None:
    query = text(_NEXT_DUE.format(hint=_hint(session))).columns(due_at=UTCDateTime())
    return session.scalars(query).first()


def finish(session: Session, timer: Timer, state: reminders.State, at: datetime) -> bool:
    """Mark a scheduled timer done or skipped; False when it no longer was scheduled (another
    scheduler got there first)."""
    result = session.execute(
        _FINISH,
        {
            "timer_approval_id": timer.approval_id,
            "timer_seq": timer.seq,
            "new_state": state.value,
            "at": at,
        },
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return False
    timer.state, timer.done_at = state, at
    return True


def skip_scheduled(session: Session, approval_id: str, at: datetime) -> None:
    """The approval settled: none of its timers fires any more."""
    session.execute(_SKIP_ALL, {"timer_approval_id": approval_id, "at": at})


def escalating_to_team(session: Session, team_id: str, *, limit: int) -> list[str]:
    """Some approvals whose scheduled escalation would add ``team_id``. Rare (deleting a
    team), so the scheduled escalations are read through their partial index and matched
    here, the same on both databases."""
    query = text(
        "SELECT approval_id, approvers FROM approval_timers WHERE state = 'scheduled'"
        " AND kind = 'escalation'"
    ).columns(approvers=JSONType)
    found: list[str] = []
    for row in session.execute(query):
        if any(ref["kind"] == "team" and ref["id"] == team_id for ref in row.approvers):
            found.append(row.approval_id)
            if len(found) >= limit:
                break
    return found


def add_approvers(
    session: Session, approval_id: str, added: list[ApproverRef], approvers: list[ApproverRef]
) -> None:
    """Let ``added`` decide the approval too; ``approvers`` is the whole list after."""
    if not added:
        return
    session.execute(
        insert(table(ApprovalApproverRow)),
        [{"approval_id": approval_id, "kind": r.kind, "ref_id": r.id} for r in added],
    )
    session.execute(
        update(ApprovalRow)
        .where(ApprovalRow.id == approval_id)
        .values(approvers=policies.refs_json(approvers))
    )


def _hint(session: Session) -> str:
    """As for approvals' deadlines: without statistics SQLite may not pick the partial index."""
    return (
        " INDEXED BY ix_approval_timers_due_at_scheduled"
        if session.get_bind().dialect.name == "sqlite"
        else ""
    )


def _row(timer: Timer) -> dict[str, Any]:
    return {
        "approval_id": timer.approval_id,
        "seq": timer.seq,
        "kind": timer.kind.value,
        "due_at": timer.due_at,
        "approvers": policies.refs_json(timer.approvers),
        "state": timer.state.value,
        "done_at": timer.done_at,
    }


def _timer(row: Any) -> Timer:
    return Timer(
        approval_id=row.approval_id,
        seq=row.seq,
        kind=reminders.Kind(row.kind),
        due_at=row.due_at,
        approvers=tuple(ApproverRef(**ref) for ref in row.approvers),
        state=reminders.State(row.state),
        done_at=row.done_at,
    )
