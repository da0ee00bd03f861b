"""How a pending approval ends: an approver's decision that meets its policy, a cancel, or
its deadline passing; and the heartbeat by which a workflow keeps its approval from
expiring. Settling ends its timers, writes ``approval.settled``, calls back and updates
its Slack messages, and wakes whoever waits on it.

Every change locks the approval row (``FOR UPDATE`` on PostgreSQL; the write lock on SQLite),
re-checks the state it found, and settles with ``UPDATE ... WHERE status = 'pending'``, so the
first settlement wins and no decision is applied twice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from signoff import errors, schemas
from signoff.domain import approvals, deliveries, events, ids, reminders
from signoff.domain.approvals import Approval, Reason, Status
from signoff.domain.principals import Context, Scope
from signoff.services import approvals as approvals_service
from signoff.services import journal
from signoff.store import approvals as store
from signoff.store import principals
from signoff.store import reminders as reminders_store
from signoff.store import slack as slack_store
from signoff.store.engine import Database

SETTLED = "approval"  # notification topic: this approval left pending


def decide(
    db: Database,
    ctx: Context,
    approval_id: str,
    spec: schemas.DecisionCreate,
    *,
    channel: approvals.Channel | None = None,
    now: datetime | None = None,
) -> Approval:
    """Record one approver's verdict; settle the approval when the policy is met."""
    user = approvals_service.require_user(ctx)
    ctx.principal.require(Scope.APPROVALS_DECIDE)
    now = now or datetime.now(UTC)
    with db.write() as session:
        approval = store.get_approval(session, approval_id, for_update=True)
        approvals_service.check_can_see(session, ctx, approval)
        record_decision(
            db,
            session,
            ctx,
            approval,
            team_ids=principals.team_ids_of(session, user.id),
            verdict=approvals.Verdict(spec.verdict),
            comment=spec.comment,
            form=spec.form,
            channel=channel or approvals.Channel(spec.channel),
            now=now,
        )
    return approval


def record_decision(
    db: Database,
    session: Session,
    ctx: Context,
    approval: Approval,
    *,
    team_ids: frozenset[str],
    verdict: approvals.Verdict,
    comment: str,
    form: dict[str, Any] | None,
    channel: approvals.Channel,
    now: datetime,
    via: dict[str, Any] | None = None,
) -> None:
    """Check and record the decision of ``ctx``'s user (a member of ``team_ids``) on
    ``approval``, which the caller has locked in ``session``; with its event and audit entry,
    and the settlement when the policy is met. For ``decide`` and the other ways to decide
    (``services/decision_links``, ``services/slack``); ``via`` adds what the channel knows of
    the decider (their Slack user id) to the audit entry."""
    user = approvals_service.require_user(ctx)
    approvals.check_can_decide(
        approval,
        user_id=user.id,
        team_ids=set(team_ids),
        verdict=verdict,
        comment=comment,
        form=form,
    )
    decision = approvals.Decision(
        id=ids.new_id("dec"),
        approval_id=approval.id,
        user_id=user.id,
        user_email=user.email,
        verdict=verdict,
        comment=comment,
        form=form,
        channel=channel,
        decided_at=now,
    )
    store.insert_decision(session, decision)
    approval.decisions.append(decision)
    decision_json = approvals.decision_json(decision)
    settled_as = approvals.settlement(approval.policy, approval.decisions)
    event = journal.record(
        session,
        ctx,
        at=now,
        action="approval.decide",
        object_type="approval",
        object_id=approval.id,
        after={k: decision_json[k] for k in ("verdict", "comment", "form", "channel")}
        | (via or {}),
        event_type=events.APPROVAL_DECIDED,
        event_data={
            "approval_id": approval.id,
            "title": approval.title,
            "decision": decision_json,
            "previous_status": approval.status.value,
            "status": (settled_as or approval.status).value,
        },
    )
    if settled_as is not None:
        _settle(db, session, ctx, approval, settled_as, Reason.DECISION, now, decision)
    elif event is not None:
        _update_slack_messages(db, session, event)


def cancel(db: Database, ctx: Context, approval_id: str, *, reason: str = "") -> Approval:
    ctx.principal.require(Scope.APPROVALS_WRITE)
    now = datetime.now(UTC)
    with db.write() as session:
        approval = _pending_to_manage(session, ctx, approval_id)
        journal.record(
            session,
            ctx,
            at=now,
            action="approval.cancel",
            object_type="approval",
            object_id=approval.id,
            after={"reason": reason},
            event_type=events.APPROVAL_CANCELED,
            event_data={
                "approval_id": approval.id,
                "title": approval.title,
                "reason": reason,
                "previous_status": approval.status.value,
                "status": Status.CANCELED.value,
            },
        )
        _settle(db, session, ctx, approval, Status.CANCELED, Reason.CANCELED, now)
    return approval


def heartbeat(db: Database, ctx: Context, approval_id: str) -> Approval:
    """The workflow is still alive: push the heartbeat deadline out. Not audited: it changes
    no state anyone decides on, and a busy pipeline may beat every few seconds."""
    ctx.principal.require(Scope.APPROVALS_WRITE)
    now = datetime.now(UTC)
    with db.write() as session:
        approval = _pending_to_manage(session, ctx, approval_id)
        approval.heartbeat_at = now
        store.record_heartbeat(session, approval)
    return approval


def expire_due(db: Database, ctx: Context, *, now: datetime | None = None, limit: int = 200) -> int:
    """Settle every approval whose deadline or heartbeat deadline has passed; how many."""
    now = now or datetime.now(UTC)
    with db.read() as session:
        due = store.due_approval_ids(session, now, limit)
    return sum(_expire(db, ctx, approval_id, now) for approval_id in due)


def _expire(db: Database, ctx: Context, approval_id: str, now: datetime) -> bool:
    with db.write() as session:
        approval = store.get_approval(session, approval_id, for_update=True)
        if not approval.is_pending or approval.due_at > now:
            return False  # decided, or heartbeat moved, since we looked
        heartbeat_deadline = approval.heartbeat_deadline_at
        if heartbeat_deadline is not None and heartbeat_deadline < approval.deadline_at:
            reason, status = Reason.HEARTBEAT, Status.EXPIRED
        else:
            reason, status = Reason.TIMEOUT, approvals.timeout_status(approval.on_timeout)
        journal.record(
            session,
            ctx,
            at=now,
            action="approval.expire",
            object_type="approval",
            object_id=approval.id,
            after={"reason": reason.value, "status": status.value},
            event_type=events.APPROVAL_EXPIRED,
            event_data={
                "approval_id": approval.id,
                "title": approval.title,
                "reason": reason.value,
                "previous_status": approval.status.value,
                "status": status.value,
            },
        )
        _settle(db, session, ctx, approval, status, reason, now)
    return True


def next_due_at(db: Database) -> datetime | None:
    """When the scheduler has something to do next: the earliest pending deadline or
    scheduled timer (two index lookups)."""
    with db.read() as session:
        found = [store.next_due_at(session), reminders_store.next_due_at(session)]
    return min((at for at in found if at is not None), default=None)


def _settle(
    db: Database,
    session: Session,
    ctx: Context,
    approval: Approval,
    status: Status,
    reason: Reason,
    now: datetime,
    last: approvals.Decision | None = None,
) -> None:
    outcome = approvals.outcome(status, reason, last)
    if not store.settle(session, approval.id, status, outcome, now):
        raise errors.AlreadyDecided(approval_status=approval.status.value, outcome=approval.outcome)
    previous = approval.status
    approval.status, approval.outcome, approval.settled_at = status, outcome, now
    if any(timer.is_scheduled for timer in approval.timers):
        reminders_store.skip_scheduled(session, approval.id, now)  # none fires any more
        for timer in approval.timers:
            if timer.is_scheduled:
                timer.state, timer.done_at = reminders.State.SKIPPED, now
    event = journal.record(
        session,
        ctx,
        at=now,
        action="approval.settle",
        object_type="approval",
        object_id=approval.id,
        before={"status": previous.value},
        after={"status": status.value, "reason": reason.value},
        event_type=events.APPROVAL_SETTLED,
        event_data=approvals.as_json(approval) | {"previous_status": previous.value},
    )
    if approval.callback_url and event is not None:
        callback, purpose = deliveries.TargetKind.CALLBACK, deliveries.Purpose.CALLBACK
        journal.deliver(db, session, event, callback, purpose, approval.callback_url)
    if event is not None:
        _update_slack_messages(db, session, event)
    db.notify(session, SETTLED, approval.id)


def _update_slack_messages(db: Database, session: Session, event: events.Event) -> None:
    """Have every Slack message posted for the event's approval show its new state, whatever
    the subscriptions that posted them match: a settled approval's buttons must go. Each
    update shows the approval as it is when sent, so their order does not matter."""
    posted = slack_store.messages_of(session, event.subject)
    targets = [message.target for message in posted]
    slack, purpose = deliveries.TargetKind.SLACK, deliveries.Purpose.SUBSCRIPTION
    journal.deliver(db, session, event, slack, purpose, *targets)


def _pending_to_manage(session: Session, ctx: Context, approval_id: str) -> Approval:
    """Cancel and heartbeat: the approval, locked, for the workflow's token, the requester,
    or an admin, while it is pending."""
    approval = store.get_approval(session, approval_id, for_update=True)
    approvals_service.check_can_see(session, ctx, approval)
    principal = ctx.principal
    may_manage = (
        principal.is_admin
        or principal.approval_id == approval.id
        or (principal.user is not None and principal.user.id == approval.requester_id)
    )
    if not may_manage:
        raise errors.PermissionDenied("only the requester, its task token or an admin may do this")
    if not approval.is_pending:
        raise errors.AlreadySettled(
            f"approval {approval.id} is already {approval.status.value}",
            approval_status=approval.status.value,
        )
    return approval
