"""Approval use cases: create, read, decide, cancel, heartbeat, and settle at the deadline.

A create either spells out its approvers and rules or names a policy (``services/policies``),
whose terms it copies: the approval keeps them whatever later happens to the policy.

Every change locks the approval row (``FOR UPDATE`` on PostgreSQL; the write lock on SQLite),
re-checks the state it found, and settles with ``UPDATE ... WHERE status = 'pending'``, so the
first settlement wins and no decision is applied twice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from signoff import errors, schemas
from signoff.domain import approvals, deliveries, destinations, events, ids, policies, reminders
from signoff.domain.approvals import Approval, Reason, Status
from signoff.domain.policies import ApproverRef
from signoff.domain.principals import Context, Scope, User
from signoff.services import journal
from signoff.store import approvals as store
from signoff.store import outbox, principals
from signoff.store import policies as policies_store
from signoff.store import reminders as reminders_store
from signoff.store import slack as slack_store
from signoff.store.engine import Database

SCHEDULE = "schedule"  # notification topic: an approval is due at <key> (epoch seconds)
SETTLED = "approval"  # notification topic: this approval left pending
DELIVERY = journal.DELIVERY
APPROVER, CALLBACK = deliveries.Purpose.APPROVER, deliveries.Purpose.CALLBACK


@dataclass(frozen=True)
class Created:
    approval: Approval
    token: str
    replayed: bool  # an Idempotency-Key replay: nothing new was created


def create(
    db: Database,
    ctx: Context,
    spec: schemas.ApprovalCreate,
    *,
    secret_key: str,
    idempotency_key: str | None = None,
    now: datetime | None = None,
    allowed_networks: Collection[destinations.Network] = (),
    email_approvers: bool = False,
) -> Created:
    """Open an approval. A ``callback_url`` at a private or loopback address is refused
    unless it is in ``allowed_networks`` (``SIGNOFF_WEBHOOK_ALLOWED_NETWORKS``). With
    ``email_approvers`` (SMTP is configured), each person who may decide it is emailed."""
    user = _require_user(ctx)
    ctx.principal.require(Scope.APPROVALS_WRITE)
    if spec.callback_url is not None:
        destinations.check_url(str(spec.callback_url), allowed_networks, field="callback_url")
    request_hash = _request_hash(spec)
    try:
        return _create(
            db, ctx, user, spec, secret_key, idempotency_key, request_hash, now, email_approvers
        )
    except errors.Conflict as exc:
        # Two requests with one Idempotency-Key raced on PostgreSQL; the loser replays.
        if type(exc) is not errors.Conflict or idempotency_key is None:
            raise
        with db.read() as session:
            found = store.find_by_idempotency_key(session, user.id, idempotency_key)
        if found is None:
            raise
        return _replay(found, request_hash, secret_key)


def _create(
    db: Database,
    ctx: Context,
    user: User,
    spec: schemas.ApprovalCreate,
    secret_key: str,
    idempotency_key: str | None,
    request_hash: str,
    now: datetime | None,
    email_approvers: bool,
) -> Created:
    approvals.check_sizes(spec.title, spec.body, len(json.dumps(spec.context)))
    # A policy name, or the request's own rules and approvers (checked before the write).
    asked = (
        spec.policy if isinstance(spec.policy, str) else _inline_rules(spec.policy, spec.approvers)
    )
    timeout = _duration(spec.timeout, "timeout")
    heartbeat = _duration(spec.heartbeat_timeout, "heartbeat_timeout")
    asked_reminders = (
        reminders.parse_reminders(spec.reminders) if spec.reminders is not None else None
    )
    escalate_after = (
        reminders.parse_escalation_after(spec.escalation.after) if spec.escalation else None
    )
    now = now or datetime.now(UTC)
    with db.write() as session:
        if idempotency_key is not None:
            found = store.find_by_idempotency_key(session, user.id, idempotency_key)
            if found is not None:
                return _replay(found, request_hash, secret_key)
        terms = (
            _named_terms(session, asked, spec, timeout, asked_reminders)
            if isinstance(asked, str)
            else _inline_terms(session, *asked, spec, timeout, asked_reminders, escalate_after)
        )
        approval_id = ids.new_id("ap")
        timers = reminders.schedule(
            approval_id, now, terms.timeout_seconds, terms.reminders, terms.escalation
        )
        approval = Approval(
            id=approval_id,
            title=spec.title,
            body=spec.body,
            context=spec.context,
            labels=sorted(set(spec.labels)),
            requester_id=user.id,
            approvers=terms.approvers,
            policy=terms.policy,
            status=Status.PENDING,
            on_timeout=terms.on_timeout,
            created_at=now,
            deadline_at=now + timedelta(seconds=terms.timeout_seconds),
            heartbeat_timeout_seconds=heartbeat,
            heartbeat_at=now if heartbeat else None,
            callback_url=str(spec.callback_url) if spec.callback_url else None,
            timers=timers,
        )
        store.insert_approval(session, approval, idempotency_key, request_hash)
        reminders_store.insert_timers(session, timers)
        _announce(db, session, ctx, approval, email_approvers=email_approvers)
        wake_at = min([approval.due_at, *(timer.due_at for timer in timers)])
        db.notify(session, SCHEDULE, f"{wake_at.timestamp():.3f}")
    return Created(approval, ids.task_token(secret_key, approval.id), replayed=False)


def _announce(
    db: Database, session: Session, ctx: Context, approval: Approval, *, email_approvers: bool
) -> None:
    """The ``approval.created`` event and audit entry, and an email to each person who may
    decide. The event names whom it emailed (``emailed``), which is how the email sender knows
    whose decision links to put in each message; nothing in it makes a link."""
    emailed = _people_to_email(session, approval) if email_approvers else {}
    data = approvals.as_json(approval)
    data["emailed"] = [{"user_id": user_id, "email": email} for user_id, email in emailed.items()]
    event = journal.record(
        session,
        ctx,
        at=approval.created_at,
        action="approval.create",
        object_type="approval",
        object_id=approval.id,
        after=_summary(approval),
        event_type=events.APPROVAL_CREATED,
        event_data=data,
    )
    assert event is not None
    journal.deliver(db, session, event, deliveries.TargetKind.EMAIL, APPROVER, *emailed.values())


def _people_to_email(session: Session, approval: Approval) -> dict[str, str]:
    return people_to_email(session, approval, approval.approvers)


def people_to_email(
    session: Session, approval: Approval, refs: Collection[ApproverRef]
) -> dict[str, str]:
    """Who ``refs`` make able to decide ``approval`` now (id -> email): its users and its
    teams' members, active people only (never service accounts), and not its requester unless
    the policy lets them decide."""
    people = principals.active_people_among(
        session,
        user_ids=[ref.id for ref in refs if ref.kind == "user"],
        team_ids=[ref.id for ref in refs if ref.kind == "team"],
    )
    if not approval.policy.requester_can_decide:
        people.pop(approval.requester_id, None)
    return people


@dataclass(frozen=True)
class _Terms:
    """Who decides, by which rules, by when and to what end if nobody does: from the request,
    or copied from the named policy it names."""

    approvers: list[ApproverRef]
    policy: policies.Policy
    timeout_seconds: int
    on_timeout: policies.OnTimeout
    reminders: tuple[int, ...] = ()
    escalation: policies.Escalation | None = None


def _inline_rules(
    spec: schemas.PolicySpec, approvers: list[str] | None
) -> tuple[policies.Policy, list[str]]:
    if approvers is None:
        raise errors.InvalidInput(
            "approvers are required, unless policy names a policy that has them",
            field="approvers",
        )
    return policies.Policy(**spec.model_dump()), approvers


def _inline_terms(
    session: Session,
    policy: policies.Policy,
    approvers: list[str],
    spec: schemas.ApprovalCreate,
    timeout: int | None,
    asked_reminders: tuple[int, ...] | None,
    escalate_after: int | None,
) -> _Terms:
    escalation = None
    if spec.escalation is not None and escalate_after is not None:
        escalation = policies.Escalation(
            escalate_after, tuple(resolve_approvers(session, spec.escalation.approvers))
        )
    return _Terms(
        approvers=resolve_approvers(session, approvers),
        policy=policy,
        timeout_seconds=timeout or policies.DEFAULT_TIMEOUT_SECONDS,
        on_timeout=policies.OnTimeout(spec.on_timeout or policies.OnTimeout.REJECT),
        reminders=asked_reminders or (),
        escalation=escalation,
    )


def _named_terms(
    session: Session,
    name: str,
    spec: schemas.ApprovalCreate,
    timeout: int | None,
    asked_reminders: tuple[int, ...] | None,
) -> _Terms:
    """The terms of the named policy as it is now: the approval keeps this copy, whatever
    later happens to the policy. One indexed read; its approvers were resolved when it was
    written."""
    named = policies_store.find_policy(session, name)
    if named is None:
        raise errors.UnknownPolicy(f"no policy named {name!r}", policy=name)
    named.check_request(
        approvers=spec.approvers,
        timeout_seconds=timeout,
        on_timeout=spec.on_timeout,
        reminders=asked_reminders,
        escalation=spec.escalation is not None,
    )
    return _Terms(
        approvers=list(named.approvers),
        policy=named.rules,
        timeout_seconds=named.timeout_seconds or timeout or policies.DEFAULT_TIMEOUT_SECONDS,
        on_timeout=named.on_timeout
        or policies.OnTimeout(spec.on_timeout or policies.OnTimeout.REJECT),
        reminders=named.reminders if named.reminders is not None else asked_reminders or (),
        escalation=named.escalation,
    )


def _duration(value: int | str | None, name: str) -> int | None:
    return policies.parse_duration(value, name=name) if value is not None else None


def _replay(found: tuple[Approval, str | None], request_hash: str, secret_key: str) -> Created:
    approval, stored_hash = found
    if stored_hash != request_hash:
        raise errors.IdempotencyConflict(
            "this Idempotency-Key was used for a different request", approval_id=approval.id
        )
    return Created(approval, ids.task_token(secret_key, approval.id), replayed=True)


def get(db: Database, ctx: Context, approval_id: str) -> Approval:
    ctx.principal.require(Scope.APPROVALS_READ)
    with db.read() as session:
        approval = store.get_approval(session, approval_id)
        _check_can_see(session, ctx, approval)
    return approval


def list_approvals(
    db: Database,
    ctx: Context,
    *,
    status: Status | None = None,
    label: str | None = None,
    requester: str | None = None,
    decidable_by_me: bool = False,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[Approval], str | None]:
    user = _require_user(ctx)
    ctx.principal.require(Scope.APPROVALS_READ)
    with db.read() as session:
        me = (user.id, ctx.principal.team_ids)
        requester_id = principals.get_user(session, requester).id if requester else None
        filters = store.Filters(
            status=status,
            label=label,
            requester_id=requester_id,
            decidable_by=me if decidable_by_me else None,
            visible_to=None if ctx.principal.is_admin else me,
        )
        return store.list_approvals(session, filters, cursor=cursor, limit=limit)


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
    user = _require_user(ctx)
    ctx.principal.require(Scope.APPROVALS_DECIDE)
    now = now or datetime.now(UTC)
    with db.write() as session:
        approval = store.get_approval(session, approval_id, for_update=True)
        _check_can_see(session, ctx, approval)
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
    user = _require_user(ctx)
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
        approval = store.get_approval(session, approval_id, for_update=True)
        _check_can_manage(session, ctx, approval)
        if not approval.is_pending:
            raise errors.AlreadySettled(
                f"approval {approval.id} is already {approval.status.value}",
                approval_status=approval.status.value,
            )
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
        approval = store.get_approval(session, approval_id, for_update=True)
        _check_can_manage(session, ctx, approval)
        if not approval.is_pending:
            raise errors.AlreadySettled(
                f"approval {approval.id} is already {approval.status.value}",
                approval_status=approval.status.value,
            )
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


def settled_among(db: Database, approval_ids: list[str]) -> list[str]:
    with db.read() as session:
        return store.settled_among(session, approval_ids)


def get_with_notifications(
    db: Database, ctx: Context, approval_id: str
) -> tuple[Approval, list[deliveries.FailingChannel]]:
    """The approval, and where its notifications are failing (``notifications_of``), read
    together."""
    ctx.principal.require(Scope.APPROVALS_READ)
    with db.read() as session:
        approval = store.get_approval(session, approval_id)
        _check_can_see(session, ctx, approval)
        return approval, _failing_channels(session, ctx, approval)


def notifications_of(
    db: Database, ctx: Context, approval_id: str
) -> list[deliveries.FailingChannel]:
    """Each destination the approval's events are failing to reach (its callback, an
    approver's email, a subscription's channel): since when, how many attempts, the last
    error; empty while everything arrives. Targets are shown as ``deliveries.shown_target``
    lets the reader see them, URLs redacted."""
    ctx.principal.require(Scope.APPROVALS_READ)
    with db.read() as session:
        approval = store.get_approval(session, approval_id)
        _check_can_see(session, ctx, approval)
        return _failing_channels(session, ctx, approval)


def deliveries_of(
    db: Database, ctx: Context, approval_id: str, *, purpose: deliveries.Purpose | None = None
) -> list[deliveries.DeliveryRecord]:
    """Every delivery of the approval's events (only those made for ``purpose`` when
    given), targets shown as ``deliveries.shown_target`` lets the reader see them."""
    ctx.principal.require(Scope.APPROVALS_READ)
    with db.read() as session:
        approval = store.get_approval(session, approval_id)
        _check_can_see(session, ctx, approval)
        found = outbox.deliveries_of_subject(
            session, approval_id, purposes=None if purpose is None else (purpose,)
        )
    reader = _reader(ctx, approval)

    def shown(d: deliveries.DeliveryRecord) -> deliveries.DeliveryRecord:
        target = deliveries.shown_target(d.purpose, d.target_kind, d.target, reader)
        error = deliveries.shown_error(d.last_error, d.target, target)
        return replace(d, target=target, last_error=error)

    return [shown(d) for d in found]


def _failing_channels(
    session: Session, ctx: Context, approval: Approval
) -> list[deliveries.FailingChannel]:
    reader = _reader(ctx, approval)

    def shown(d: deliveries.FailingDelivery) -> str:
        return deliveries.shown_target(d.purpose, d.target_kind, d.target, reader, compact=True)

    return deliveries.failing_channels(outbox.failing_of_subject(session, approval.id), shown)


def _reader(ctx: Context, approval: Approval) -> deliveries.Reader:
    principal = ctx.principal
    if principal.is_admin:
        return deliveries.Reader.ADMIN
    if principal.approval_id == approval.id or (
        principal.user is not None and principal.user.id == approval.requester_id
    ):
        return deliveries.Reader.REQUESTER
    return deliveries.Reader.APPROVER


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
        callback = deliveries.TargetKind.CALLBACK
        journal.deliver(db, session, event, callback, CALLBACK, approval.callback_url)
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


def resolve_approvers(session: Session, refs: list[str]) -> list[ApproverRef]:
    """The users and teams ``refs`` name (``alice@example.com``, ``usr_...``, ``team:owners``),
    without repeats; ``UnknownApprover`` for the first that names nobody."""
    resolved: dict[tuple[str, str], ApproverRef] = {}
    for ref in refs:
        kind, _, name = ref.partition(":") if ":" in ref else ("user", "", ref)
        try:
            if kind == "team":
                team_id, team_name = principals.get_team_id_and_name(session, name)
                resolved[("team", team_id)] = ApproverRef("team", team_id, team_name)
            elif kind == "user":
                user = principals.get_user(session, name.lower() if "@" in name else name)
                resolved[("user", user.id)] = ApproverRef("user", user.id, user.email)
            else:
                raise errors.UnknownApprover(f"approver {ref!r} is not 'user:...' or 'team:...'")
        except errors.NotFound as exc:
            raise errors.UnknownApprover(f"no such approver: {ref!r}", approver=ref) from exc
    return list(resolved.values())


def _request_hash(spec: schemas.ApprovalCreate) -> str:
    """What the request asks for, as a digest. A policy name (a string) and inline rules (an
    object) never hash alike. For inline rules an omitted timeout or on_timeout hashes as the
    default it stands for, as it did before they could be omitted; with a name, omitting one
    (take the policy's) and giving one are different requests. A rule added since
    (``link_requires_login``) is left out while it has its default, so hashes stored before
    it existed keep matching."""
    asked = spec.model_dump(mode="json")
    if not isinstance(spec.policy, str):
        asked["timeout"] = "24h" if spec.timeout is None else asked["timeout"]
        asked["on_timeout"] = spec.on_timeout or policies.OnTimeout.REJECT.value
        if not spec.policy.link_requires_login:
            del asked["policy"]["link_requires_login"]
    for added_later in ("reminders", "escalation"):  # absent from hashes stored before them
        if asked[added_later] is None:
            del asked[added_later]
    canonical = json.dumps(asked, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _summary(approval: Approval) -> dict[str, Any]:
    return {
        "title": approval.title,
        "status": approval.status.value,
        "approvers": [f"{r.kind}:{r.name}" for r in approval.approvers],
        "deadline_at": approval.deadline_at.isoformat(),
        "on_timeout": approval.on_timeout.value,
        "policy": approval.policy.name,
    }


def _require_user(ctx: Context) -> User:
    if ctx.principal.user is None:
        raise errors.PermissionDenied("this needs an API key of a user, not a task token")
    return ctx.principal.user


def _check_can_see(session: Session, ctx: Context, approval: Approval) -> None:
    principal = ctx.principal
    if principal.is_admin or principal.approval_id == approval.id:
        return
    user = principal.user
    if user is not None and (
        user.id == approval.requester_id
        or approvals.is_approver(approval, user_id=user.id, team_ids=set(principal.team_ids))
    ):
        return
    raise errors.ApprovalNotFound(f"no approval {approval.id!r}")


def _check_can_manage(session: Session, ctx: Context, approval: Approval) -> None:
    """Cancel and heartbeat: the workflow's token, the requester, or an admin."""
    _check_can_see(session, ctx, approval)
    principal = ctx.principal
    if principal.is_admin or principal.approval_id == approval.id:
        return
    if principal.user is not None and principal.user.id == approval.requester_id:
        return
    raise errors.PermissionDenied("only the requester, its task token or an admin may do this")
