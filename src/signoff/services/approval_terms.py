"""An approval's terms: who decides, by which rules, by when, and to what end if nobody does.

A create request either spells them out (inline rules and approvers, resolved here to users
and teams) or names a policy (``services/policies``), whose terms it copies: the approval
keeps this copy whatever later happens to the policy. Named policies resolve their approvers
with ``resolve_approvers`` when they are written, as an inline request's are when it is made.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from signoff import errors, schemas
from signoff.domain import policies
from signoff.domain.policies import ApproverRef
from signoff.store import policies as policies_store
from signoff.store import principals


@dataclass(frozen=True)
class Terms:
    """Who decides, by which rules, by when and to what end if nobody does: from the request,
    or copied from the named policy it names."""

    approvers: list[ApproverRef]
    policy: policies.Policy
    timeout_seconds: int
    on_timeout: policies.OnTimeout
    reminders: tuple[int, ...] = ()
    escalation: policies.Escalation | None = None


def inline_rules(
    spec: schemas.PolicySpec, approvers: list[str] | None
) -> tuple[policies.Policy, list[str]]:
    """A request's own rules and approvers, before anything is read: ``InvalidInput`` when it
    names no approvers (only a named policy may supply them)."""
    if approvers is None:
        raise errors.InvalidInput(
            "approvers are required, unless policy names a policy that has them",
            field="approvers",
        )
    return policies.Policy(**spec.model_dump()), approvers


def inline_terms(
    session: Session,
    policy: policies.Policy,
    approvers: list[str],
    spec: schemas.ApprovalCreate,
    timeout: int | None,
    asked_reminders: tuple[int, ...] | None,
    escalate_after: int | None,
) -> Terms:
    """The terms a request spells out (``inline_rules``): its approvers and escalation's
    approvers resolved, an omitted timeout or ``on_timeout`` taking its default."""
    escalation = None
    if spec.escalation is not None and escalate_after is not None:
        escalation = policies.Escalation(
            escalate_after, tuple(resolve_approvers(session, spec.escalation.approvers))
        )
    return Terms(
        approvers=resolve_approvers(session, approvers),
        policy=policy,
        timeout_seconds=timeout or policies.DEFAULT_TIMEOUT_SECONDS,
        on_timeout=policies.OnTimeout(spec.on_timeout or policies.OnTimeout.REJECT),
        reminders=asked_reminders or (),
        escalation=escalation,
    )


def named_terms(
    session: Session,
    name: str,
    spec: schemas.ApprovalCreate,
    timeout: int | None,
    asked_reminders: tuple[int, ...] | None,
) -> Terms:
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
    return Terms(
        approvers=list(named.approvers),
        policy=named.rules,
        timeout_seconds=named.timeout_seconds or timeout or policies.DEFAULT_TIMEOUT_SECONDS,
        on_timeout=named.on_timeout
        or policies.OnTimeout(spec.on_timeout or policies.OnTimeout.REJECT),
        reminders=named.reminders if named.reminders is not None else asked_reminders or (),
        escalation=named.escalation,
    )


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
