"""What each ``signoff.yaml`` stack created (``managed_objects``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from signoff.store.tables import ManagedObjectRow


def managed(session: Session, stack: str) -> dict[tuple[str, str], str]:
    """(kind, name) -> object id of everything ``stack`` manages."""
    rows = session.scalars(select(ManagedObjectRow).where(ManagedObjectRow.stack == stack))
    return {(row.kind, row.name): row.object_id for row in rows}


def managed_elsewhere(session: Session, stack: str, kind: str, name: str) -> str | None:
    """The other stack that manages (kind, name), if one does."""
    return session.scalars(
        select(ManagedObjectRow.stack).where(
            ManagedObjectRow.kind == kind,
            ManagedObjectRow.name == name,
            ManagedObjectRow.stack != stack,
        )
    ).first()


def remember(
    session: Session, stack: str, kind: str, name: str, object_id: str, at: datetime
) -> None:
    row = session.get(ManagedObjectRow, (stack, kind, name))
    if row is None:
        session.add(
            ManagedObjectRow(stack=stack, kind=kind, name=name, object_id=object_id, created_at=at)
        )
    else:
        row.object_id = object_id
    session.flush()


def forget(session: Session, stack: str, kind: str, name: str) -> None:
    session.execute(
        delete(ManagedObjectRow).where(
            ManagedObjectRow.stack == stack,
            ManagedObjectRow.kind == kind,
            ManagedObjectRow.name == name,
        )
    )
