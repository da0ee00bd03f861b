"""Firing an approval's reminders and escalation when they fall due (the scheduler's other job).

Each timer fires in its own transaction, with its approval locked as a decision locks it, and
is marked done by ``UPDATE ... WHERE state = 'scheduled'``: of several schedulers, one fires
it, once. A timer of an approval that settled meanwhile never fires (settling skips them).
When no scheduler ran for a while and several reminders of one approval are due, only the
latest is sent; the others are skipped.

* A **reminder** writes ``approval.reminder_due`` and emails each person who may decide and
  has not (active people, as at creation) a reminder with their own decision links.
* An **escalation** adds its approvers to the approval, writes ``approval.escalated``, and
  emails whoever it newly lets decide their decision links.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from signoff.domain import approvals, deliveries, events, policies, reminders
from signoff.domain.approvals import Approval
from signoff.domain.principals import Context
from signoff.domain.reminders import Kind, State, Timer
from signoff.services import approvals as approvals_service
from signoff.services import journal
from signoff.store import approvals as approvals_store
from signoff.store import reminders as store
from signoff.store.engine import Database


def fire_due(db: Database, ctx: Context, *, now: datetime | None = None, limit: int = 200) -> int:
    """Fire every scheduled timer due by ``now``; how many fired."""
    now = now or datetime.now(UTC)
    with db.read() as session:
        due = store.due_timers(session, now, limit)
    return sum(_fire(db, ctx, approval_id, seq, now) for approval_id, seq in due)


def _fire(db: Database, ctx: Context, approval_id: str, seq: int, now: datetime) -> bool:
    with db.write() as session:
        approval = approvals_store.get_approval(session, approval_id, for_update=True)
        timer = next((t for t in approval.timers if t.seq == seq), None)
        if timer is None or not timer.is_scheduled or timer.due_at > now:
            return False  # another scheduler fired it, or its approval settled
        # An approval past its deadline (or heartbeat's) is the expiry's to settle, even when
        # no scheduler has expired it yet: no reminder or escalation after the deadline.
        past_due = approval.due_at <= now
        if not approval.is_pending or past_due or _is_overtaken(approval.timers, timer, now):
            store.finish(session, timer, State.SKIPPED, now)
            return False
        if not store.finish(session, timer, State.DONE, now):
            return False
        if timer.kind is Kind.REMINDER:
            _remind(db, session, ctx, approval, timer, now)
        else:
            _escalate(db, session, ctx, approval, timer, now)
    return True


def _is_overtaken(timers: list[Timer], timer: Timer, now: datetime) -> bool:
    """Whether a later reminder is due too (no scheduler ran for a while): that one alone is
    sent, rather than several reminders at once."""
    return timer.kind is Kind.REMINDER and any(
        t.kind is Kind.REMINDER and t.seq > timer.seq and t.is_scheduled and t.due_at <= now
        for t in timers
    )


def _remind(
    db: Database, session: Session, ctx: Context, approval: Approval, timer: Timer, now: datetime
) -> None:
    number, of = reminders.reminder_number(approval.timers, timer)
    undecided = approvals.undecided(
        approval, approvals_service.people_to_email(session, approval, approval.approvers)
    )
    people = _people(undecided)
    event = journal.record(
        session,
        ctx,
        at=now,
        action="approval.remind",
        object_type="approval",
        object_id=approval.id,
        after={"reminder": number, "of": of, "reminded": sorted(undecided.values())},
        event_type=events.APPROVAL_REMINDER_DUE,
        event_data=_approval_data(approval)
        | {"reminder": number, "reminders": of, "undecided": people, "emailed": people},
    )
    assert event is not None
    email, approver = deliveries.TargetKind.EMAIL, deliveries.Purpose.APPROVER
    journal.deliver(db, session, event, email, approver, *undecided.values())


def _escalate(
    db: Database, session: Session, ctx: Context, approval: Approval, timer: Timer, now: datetime
) -> None:
    previous = list(approval.approvers)
    known = {(ref.kind, ref.id) for ref in previous}
    added = [ref for ref in timer.approvers if (ref.kind, ref.id) not in known]
    approval.approvers = previous + added
    store.add_approvers(session, approval.id, added, approval.approvers)
    could_decide = approvals_service.people_to_email(session, approval, previous)
    newly = {
        user_id: email
        for user_id, email in approvals.undecided(
            approval, approvals_service.people_to_email(session, approval, added)
        ).items()
        if user_id not in could_decide
    }
    people = _people(newly)
    event = journal.record(
        session,
        ctx,
        at=now,
        action="approval.escalate",
        object_type="approval",
        object_id=approval.id,
        before={"approvers": _names(previous)},
        after={"approvers": _names(approval.approvers), "added": _names(added)},
        event_type=events.APPROVAL_ESCALATED,
        event_data=_approval_data(approval)
        | {
            "previous_approvers": policies.refs_json(previous),
            "added_approvers": policies.refs_json(added),
            "approvers": policies.refs_json(approval.approvers),
            "emailed": people,
        },
    )
    assert event is not None
    email, approver = deliveries.TargetKind.EMAIL, deliveries.Purpose.APPROVER
    journal.deliver(db, session, event, email, approver, *newly.values())


def _approval_data(approval: Approval) -> dict[str, Any]:
    """What a reminder or escalation event says of its approval: enough for an approver's
    email (title, body, context, rules and deadline) without its callback or decisions."""
    return {
        "approval_id": approval.id,
        "title": approval.title,
        "body": approval.body,
        "context": approval.context,
        "labels": approval.labels,
        "status": approval.status.value,
        "policy": approval.policy.as_json(),
        "deadline_at": approval.deadline_at.isoformat(),
        "decisions": len(approval.decisions),
    }


def _people(found: dict[str, str]) -> list[dict[str, str]]:
    return [{"user_id": user_id, "email": email} for user_id, email in found.items()]


def _names(refs: list[Any]) -> list[str]:
    return [f"{ref.kind}:{ref.name}" for ref in refs]
