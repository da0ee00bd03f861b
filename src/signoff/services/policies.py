"""Named policies: create, replace, read, list and delete the reusable policies that approvals
name (``policy="prod-promotion"``).

Admins write them, each write one transaction with its audit entry. Anyone whose key may read
approvals may read them: a requester needs to know what a name stands for. Approver
references are resolved and checked when a policy is written, as an approval's are when it is
created, so an approval made from a policy needs no approver lookups.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from signoff import errors, schemas
from signoff.domain import ids, policies, reminders
from signoff.domain.policies import NamedPolicy
from signoff.domain.principals import Context, Scope
from signoff.services import approval_terms, journal
from signoff.store import policies as store
from signoff.store.engine import Database

_RULES = set(schemas.PolicySpec.model_fields)  # the decision rules among a policy's fields


def create(db: Database, ctx: Context, spec: schemas.PolicyCreate) -> NamedPolicy:
    ctx.principal.require_admin()
    policies.check_policy_name(spec.name)
    now = datetime.now(UTC)
    with db.write() as session:
        policy = _build(session, ids.new_id("pol"), spec.name, spec, created_at=now, now=now)
        store.insert_policy(session, policy)
        _record(session, ctx, now, "policy.create", policy.id, after=_summary(policy))
    return policy


def replace(db: Database, ctx: Context, name: str, spec: schemas.PolicyReplace) -> NamedPolicy:
    """Replace everything the policy holds with ``spec`` (what ``spec`` leaves out takes its
    default). Approvals already made from it keep the copy they took."""
    ctx.principal.require_admin()
    now = datetime.now(UTC)
    with db.write() as session:
        old = store.get_policy(session, name, for_update=True)
        policy = _build(session, old.id, old.name, spec, created_at=old.created_at, now=now)
        store.update_policy(session, policy)
        _record(session, ctx, now, "policy.update", policy.id, _summary(old), _summary(policy))
    return policy


def get(db: Database, ctx: Context, name: str) -> NamedPolicy:
    _require_reader(ctx)
    with db.read() as session:
        return store.get_policy(session, name)


def list_policies(
    db: Database, ctx: Context, *, cursor: str | None = None, limit: int = 50
) -> tuple[list[NamedPolicy], str | None]:
    """A page of policies in name order, and the cursor of the next page (the last name)."""
    _require_reader(ctx)
    with db.read() as session:
        found = store.list_policies(session, after=cursor, limit=limit + 1)
    page = found[:limit]
    return page, page[-1].name if len(found) > limit else None


def delete(db: Database, ctx: Context, name: str) -> None:
    """Delete the policy. Approvals made from it keep their copy; new ones naming it get
    ``unknown_policy``."""
    ctx.principal.require_admin()
    now = datetime.now(UTC)
    with db.write() as session:
        old = store.get_policy(session, name, for_update=True)
        store.delete_policy(session, old.id)
        _record(session, ctx, now, "policy.delete", old.id, before=_summary(old))


def _build(
    session: Session,
    policy_id: str,
    name: str,
    spec: schemas.PolicyReplace,
    *,
    created_at: datetime,
    now: datetime,
) -> NamedPolicy:
    rules = policies.Policy(**spec.model_dump(include=_RULES), name=name)
    timeout = policies.parse_duration(spec.timeout) if spec.timeout is not None else None
    reminder_seconds = (
        reminders.parse_reminders(spec.reminders) if spec.reminders is not None else None
    )
    escalation = None
    if spec.escalation is not None:
        escalation = policies.Escalation(
            reminders.parse_escalation_after(spec.escalation.after),
            tuple(approval_terms.resolve_approvers(session, spec.escalation.approvers)),
        )
    if timeout is not None:  # otherwise each approval's timeout is checked when it is made
        reminders.check_before_deadline(timeout, reminder_seconds or (), escalation)
    return NamedPolicy(
        id=policy_id,
        name=name,
        description=spec.description,
        approvers=tuple(approval_terms.resolve_approvers(session, spec.approvers)),
        rules=rules,
        timeout_seconds=timeout,
        on_timeout=policies.OnTimeout(spec.on_timeout) if spec.on_timeout else None,
        created_at=created_at,
        updated_at=now,
        reminders=reminder_seconds,
        escalation=escalation,
    )


def _record(
    session: Session,
    ctx: Context,
    at: datetime,
    action: str,
    policy_id: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    journal.record(
        session,
        ctx,
        at=at,
        action=action,
        object_type="policy",
        object_id=policy_id,
        before=before,
        after=after,
    )


def _summary(policy: NamedPolicy) -> dict[str, Any]:
    """What the audit log keeps of a policy: everything it holds."""
    shown = policy.as_json()
    return {key: shown[key] for key in shown if key not in ("id", "created_at", "updated_at")}


def _require_reader(ctx: Context) -> None:
    if ctx.principal.user is None and not ctx.principal.is_admin:
        raise errors.PermissionDenied("reading policies needs a user's API key, not a task token")
    ctx.principal.require(Scope.APPROVALS_READ)
