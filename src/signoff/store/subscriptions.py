"""Subscriptions: one row each. ``list_enabled`` is on every event's path (the fan-out reads
it once per transaction that writes events), so its statement is built once."""

from __future__ import annotations

from typing import Any

import sqlalchemy.exc
from sqlalchemy import bindparam, delete, insert, select, true, update
from sqlalchemy.orm import Session

from signoff import errors
from signoff.domain.subscriptions import Kind, Subscription
from signoff.store.tables import SubscriptionRow, table

_subscriptions = table(SubscriptionRow)
_BY_NAME = select(_subscriptions).where(_subscriptions.c.name == bindparam("name"))
_BY_NAME_FOR_UPDATE = _BY_NAME.with_for_update()
_ENABLED = select(_subscriptions).where(_subscriptions.c.enabled == true())


def insert_subscription(session: Session, subscription: Subscription) -> None:
    """Add ``subscription``; ``DuplicateName`` when the name is taken, also by a concurrent
    transaction (the unique index decides)."""
    try:
        with session.begin_nested():
            session.execute(insert(_subscriptions), _row(subscription))
    except sqlalchemy.exc.IntegrityError as exc:
        raise errors.DuplicateName(f"a subscription named {subscription.name} exists") from exc


def get_subscription(session: Session, name: str, *, for_update: bool = False) -> Subscription:
    query = _BY_NAME_FOR_UPDATE if for_update else _BY_NAME
    row = session.execute(query, {"name": name}).one_or_none()
    if row is None:
        raise errors.SubscriptionNotFound(f"no subscription named {name!r}")
    return _subscription(row)


def list_subscriptions(session: Session, *, after: str | None, limit: int) -> list[Subscription]:
    """Up to ``limit`` subscriptions in name order, starting after the name ``after``."""
    query = select(_subscriptions).order_by(_subscriptions.c.name).limit(limit)
    if after is not None:
        query = query.where(_subscriptions.c.name > after)
    return [_subscription(row) for row in session.execute(query)]


def list_enabled(session: Session) -> list[Subscription]:
    return [_subscription(row) for row in session.execute(_ENABLED)]


def update_subscription(session: Session, subscription: Subscription) -> None:
    row = _row(subscription)
    del row["id"], row["created_at"]
    session.execute(
        update(_subscriptions).where(_subscriptions.c.id == subscription.id).values(**row)
    )


def delete_subscription(session: Session, subscription_id: str) -> None:
    session.execute(delete(_subscriptions).where(_subscriptions.c.id == subscription_id))


def _row(subscription: Subscription) -> dict[str, Any]:
    target = subscription.target
    return {
        "id": subscription.id,
        "name": subscription.name,
        "kind": subscription.kind.value,
        "target": list(target) if isinstance(target, tuple) else target,
        "filter": subscription.filter,
        "enabled": subscription.enabled,
        "created_at": subscription.created_at,
        "updated_at": subscription.updated_at,
    }


def _subscription(row: Any) -> Subscription:
    return Subscription(
        id=row.id,
        name=row.name,
        kind=Kind(row.kind),
        target=tuple(row.target) if isinstance(row.target, list) else row.target,
        filter=row.filter,
        enabled=row.enabled,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
