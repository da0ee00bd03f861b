"""Subscriptions: create, replace, update, read, list and delete where matching events go.

Admins only, reads included: a target may hold a token (chat services put theirs in webhook
URLs). Each write is one transaction with its audit entry, whose summary shows URLs redacted.
What is written is checked first: the target's shape for its kind, URLs against the address
rules callbacks follow (``allowed_networks``, from ``SIGNOFF_WEBHOOK_ALLOWED_NETWORKS``), and
the filter, whose exact event types must be public types of the catalogue.

A change reaches the fan-out (``services/journal.py``) with the next transaction that writes
an event, which reads the enabled subscriptions itself: every process sees it at once, and no
process holds a copy to forget.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace as changed
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from signoff import schemas
from signoff.domain import destinations, ids, subscriptions
from signoff.domain.principals import Context
from signoff.domain.subscriptions import Kind, Subscription
from signoff.services import journal
from signoff.store import subscriptions as store
from signoff.store.engine import Database

Networks = Collection[destinations.Network]


def create(
    db: Database, ctx: Context, spec: schemas.SubscriptionCreate, *, allowed_networks: Networks = ()
) -> Subscription:
    ctx.principal.require_admin()
    subscriptions.check_name(spec.name)
    now = datetime.now(UTC)
    subscription = _checked(
        Subscription(
            id=ids.new_id("sub"),
            name=spec.name,
            kind=Kind(spec.kind),
            target=_target(spec.target),
            filter=spec.filter,
            enabled=spec.enabled,
            created_at=now,
            updated_at=now,
        ),
        allowed_networks,
    )
    with db.write() as session:
        store.insert_subscription(session, subscription)
        _record(session, ctx, now, "subscription.create", subscription, after=subscription)
    return subscription


def replace(
    db: Database,
    ctx: Context,
    name: str,
    spec: schemas.SubscriptionReplace,
    *,
    allowed_networks: Networks = (),
) -> Subscription:
    """Replace everything the subscription holds (what ``spec`` leaves out takes its default)."""
    return _change(db, ctx, name, spec.model_dump(), allowed_networks)


def update(
    db: Database,
    ctx: Context,
    name: str,
    spec: schemas.SubscriptionUpdate,
    *,
    allowed_networks: Networks = (),
) -> Subscription:
    """Change only the fields ``spec`` gives."""
    return _change(db, ctx, name, spec.model_dump(exclude_none=True), allowed_networks)


def get(db: Database, ctx: Context, name: str) -> Subscription:
    ctx.principal.require_admin()
    with db.read() as session:
        return store.get_subscription(session, name)


def list_subscriptions(
    db: Database, ctx: Context, *, cursor: str | None = None, limit: int = 50
) -> tuple[list[Subscription], str | None]:
    """A page in name order, and the cursor of the next page (the last name)."""
    ctx.principal.require_admin()
    with db.read() as session:
        found = store.list_subscriptions(session, after=cursor, limit=limit + 1)
    page = found[:limit]
    return page, page[-1].name if len(found) > limit else None


def delete(db: Database, ctx: Context, name: str) -> None:
    """Delete the subscription. Deliveries it already made are still sent."""
    ctx.principal.require_admin()
    now = datetime.now(UTC)
    with db.write() as session:
        old = store.get_subscription(session, name, for_update=True)
        store.delete_subscription(session, old.id)
        _record(session, ctx, now, "subscription.delete", old, before=old)


def _change(
    db: Database, ctx: Context, name: str, given: dict[str, Any], allowed: Networks
) -> Subscription:
    ctx.principal.require_admin()
    now = datetime.now(UTC)
    with db.write() as session:
        old = store.get_subscription(session, name, for_update=True)
        new = _checked(
            changed(
                old,
                kind=Kind(given.get("kind", old.kind)),
                target=_target(given["target"]) if "target" in given else old.target,
                filter=given.get("filter", old.filter),
                enabled=given.get("enabled", old.enabled),
                updated_at=now,
            ),
            allowed,
            old,
        )
        store.update_subscription(session, new)
        _record(session, ctx, now, "subscription.update", new, before=old, after=new)
    return new


def _checked(
    subscription: Subscription, allowed: Networks, old: Subscription | None = None
) -> Subscription:
    """``subscription`` with its target as stored, once it and its filter pass. A target
    that does not change is not held to the address rules again: whatever they are now,
    switching a subscription off must work."""
    subscriptions.check_filter(subscription.filter)
    kind, target = subscription.kind, subscription.target
    normalized = subscriptions.normalized_target(kind, target)
    if old is None or (kind, normalized) != (old.kind, old.target):
        normalized = subscriptions.checked_target(kind, target, allowed)
    return changed(subscription, target=normalized)


def _target(given: str | list[str]) -> str | tuple[str, ...]:
    return given if isinstance(given, str) else tuple(given)


def _record(
    session: Session,
    ctx: Context,
    at: datetime,
    action: str,
    subscription: Subscription,
    *,
    before: Subscription | None = None,
    after: Subscription | None = None,
) -> None:
    journal.record(
        session,
        ctx,
        at=at,
        action=action,
        object_type="subscription",
        object_id=subscription.id,
        before=before.summary() if before else None,
        after=after.summary() if after else None,
    )
