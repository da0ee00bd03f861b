"""Named policies: one row each, with everything the policy holds in its ``spec`` JSON.

``spec`` keeps the approvers already resolved (kind, id, name), so an approval that names a
policy costs one indexed read by name (``find_policy``, built once like the approvals'
statements) and no approver lookups.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy.exc
from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from signoff import errors
from signoff.domain import policies
from signoff.domain.policies import NamedPolicy
from signoff.store.tables import PolicyRow, table

_policies = table(PolicyRow)
_BY_NAME = select(_policies).where(_policies.c.name == bindparam("name"))
_BY_NAME_FOR_UPDATE = _BY_NAME.with_for_update()


def insert_policy(session: Session, policy: NamedPolicy) -> None:
    """Add ``policy``; ``DuplicateName`` when one by that name exists, also when another
    transaction took the name a moment ago (the unique index decides)."""
    try:
        with session.begin_nested():
            session.execute(insert(_policies), _row(policy))
    except sqlalchemy.exc.IntegrityError as exc:
        raise errors.DuplicateName(f"a policy named {policy.name} exists") from exc


def find_policy(session: Session, name: str) -> NamedPolicy | None:
    row = session.execute(_BY_NAME, {"name": name}).one_or_none()
    return _policy(row) if row else None


def get_policy(session: Session, name: str, *, for_update: bool = False) -> NamedPolicy:
    query = _BY_NAME_FOR_UPDATE if for_update else _BY_NAME
    row = session.execute(query, {"name": name}).one_or_none()
    if row is None:
        raise errors.PolicyNotFound(f"no policy named {name!r}")
    return _policy(row)


def list_policies(session: Session, *, after: str | None, limit: int) -> list[NamedPolicy]:
    """Up to ``limit`` policies in name order, starting after the name ``after``."""
    query = select(_policies).order_by(_policies.c.name).limit(limit)
    if after is not None:
        query = query.where(_policies.c.name > after)
    return [_policy(row) for row in session.execute(query)]


def update_policy(session: Session, policy: NamedPolicy) -> None:
    """Store ``policy``'s content and ``updated_at`` over the row with its id."""
    row = _row(policy)
    session.execute(
        update(_policies)
        .where(_policies.c.id == policy.id)
        .values(description=row["description"], spec=row["spec"], updated_at=row["updated_at"])
    )


def delete_policy(session: Session, policy_id: str) -> None:
    session.execute(delete(_policies).where(_policies.c.id == policy_id))


def _row(policy: NamedPolicy) -> dict[str, Any]:
    return {
        "id": policy.id,
        "name": policy.name,
        "description": policy.description,
        "spec": {
            "approvers": [{"kind": r.kind, "id": r.id, "name": r.name} for r in policy.approvers],
            "rules": policy.rules.rules_json(),
            "timeout_seconds": policy.timeout_seconds,
            "on_timeout": policy.on_timeout.value if policy.on_timeout else None,
            "reminders": list(policy.reminders) if policy.reminders is not None else None,
            "escalation": policy.escalation.as_json() if policy.escalation else None,
        },
        "created_at": policy.created_at,
        "updated_at": policy.updated_at,
    }


def _policy(row: Any) -> NamedPolicy:
    spec = row.spec
    return NamedPolicy(
        id=row.id,
        name=row.name,
        description=row.description,
        approvers=tuple(policies.ApproverRef(**ref) for ref in spec["approvers"]),
        rules=policies.Policy(**spec["rules"], name=row.name),
        timeout_seconds=spec["timeout_seconds"],
        on_timeout=policies.OnTimeout(spec["on_timeout"]) if spec["on_timeout"] else None,
        created_at=row.created_at,
        updated_at=row.updated_at,
        reminders=_reminders(spec.get("reminders")),  # absent from policies written before
        escalation=_escalation(spec.get("escalation")),
    )


def _reminders(found: list[int] | None) -> tuple[int, ...] | None:
    return tuple(found) if found is not None else None


def _escalation(found: dict[str, Any] | None) -> policies.Escalation | None:
    if found is None:
        return None
    refs = tuple(policies.ApproverRef(**ref) for ref in found["approvers"])
    return policies.Escalation(found["after_seconds"], refs)
