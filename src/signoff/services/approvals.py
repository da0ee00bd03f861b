"""Approval use cases: create and read; the rest of an approval's life has its own modules.

A create either spells out its approvers and rules or names a policy (``services/policies``),
whose terms it copies (``services/approval_terms``): the approval keeps them whatever later
happens to the policy. An ``Idempotency-Key`` makes a repeated create return the first one.
Deciding, cancelling, the heartbeat and the deadline are ``services/approval_settlement``;
where an approval's notifications went is ``services/approval_notifications``. Who may see
an approval (``check_can_see``) is decided here, for all of them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from signoff import errors, schemas
from signoff.domain import approvals, deliveries, destinations, events, ids, policies, reminders
from signoff.domain.approvals import Approval, Status
from signoff.domain.policies import ApproverRef
from signoff.domain.principals import Context, Scope, User
from signoff.services import approval_terms, journal
from signoff.store import approvals as store
from signoff.store import principals
from signoff.store import reminders as reminders_store
from signoff.store.engine import Database

SCHEDULE = "schedule"  # notification topic: an approval is due at <key> (epoch seconds)
DELIVERY = journal.DELIVERY
APPROVER = deliveries.Purpose.APPROVER


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
    user = require_user(ctx)
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
        spec.policy
        if isinstance(spec.policy, str)
        else approval_terms.inline_rules(spec.policy, spec.approvers)
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
            approval_terms.named_terms(session, asked, spec, timeout, asked_reminders)
            if isinstance(asked, str)
            else approval_terms.inline_terms(
                session, *asked, spec, timeout, asked_reminders, escalate_after
            )
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
        check_can_see(session, ctx, approval)
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
    user = require_user(ctx)
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


def settled_among(db: Database, approval_ids: list[str]) -> list[str]:
    with db.read() as session:
        return store.settled_among(session, approval_ids)


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


def require_user(ctx: Context) -> User:
    """The user the request acts for; ``PermissionDenied`` for a task token (or signoff)."""
    if ctx.principal.user is None:
        raise errors.PermissionDenied("this needs an API key of a user, not a task token")
    return ctx.principal.user


def check_can_see(session: Session, ctx: Context, approval: Approval) -> None:
    """Admins, the approval's task token, its requester and its approvers may see it; to
    anyone else it does not exist (``ApprovalNotFound``)."""
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
