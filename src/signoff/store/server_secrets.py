"""Secrets the server makes for itself the first time it needs them."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from signoff.store.tables import ServerSecretRow


def find(session: Session, name: str) -> str | None:
    return session.scalars(
        select(ServerSecretRow.value).where(ServerSecretRow.name == name)
    ).first()


def ensure(session: Session, name: str, make: Callable[[], str]) -> str:
    existing = find(session, name)
    if existing is not None:
        return existing
    value = make()
    session.add(ServerSecretRow(name=name, value=value))
    session.flush()
    return value
