"""The audit log: append under the head row's lock, read in sequence order."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from signoff.domain import audit
from signoff.store.tables import AuditEntryRow, AuditHeadRow, table

HEAD_ID = 1
_head = table(AuditHeadRow)
_HEAD_FOR_UPDATE = select(_head.c.seq, _head.c.hash).where(_head.c.id == HEAD_ID).with_for_update()
_INSERT_ENTRIES = insert(table(AuditEntryRow))
_MOVE_HEAD = (
    update(_head)
    .where(_head.c.id == HEAD_ID)
    .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
)


@dataclass(frozen=True)
class Filters:
    object_type: str | None = None
    object_id: str | None = None
    actor: str | None = None
    action: str | None = None
    since: datetime | None = None  # entries at or after
    until: datetime | None = None  # entries before


def append(session: Session, entries: list[dict[str, Any]]) -> list[audit.AuditEntry]:
    """Append entries (``AuditEntry`` fields but seq and hashes) in order, in one go.

    Locks the head row until commit: called last in a transaction, it keeps that lock short.
    """
    head = session.execute(_HEAD_FOR_UPDATE).one()
    seq, prev_hash, rows = head.seq, head.hash, []
    for entry in entries:
        seq += 1
        fields = entry | {"seq": seq}
        digest = audit.entry_hash(prev_hash, fields | {"at": fields["at"].isoformat()})
        rows.append(fields | {"prev_hash": prev_hash, "hash": digest})
        prev_hash = digest
    session.execute(_INSERT_ENTRIES, rows)
    session.execute(_MOVE_HEAD, {"new_seq": seq, "new_hash": prev_hash})
    return [audit.AuditEntry(**row) for row in rows]


def head(session: Session) -> tuple[int, str]:
    row = session.execute(
        select(AuditHeadRow.seq, AuditHeadRow.hash).where(AuditHeadRow.id == HEAD_ID)
    ).one()
    return row.seq, row.hash


def iterate(session: Session, *, batch: int = 1000) -> Iterator[audit.AuditEntry]:
    """Every entry in sequence order, fetched in batches by key (no long-held cursor)."""
    after = 0
    while True:
        rows = list(
            session.scalars(
                select(AuditEntryRow)
                .where(AuditEntryRow.seq > after)
                .order_by(AuditEntryRow.seq)
                .limit(batch)
            )
        )
        yield from (_entry(row) for row in rows)
        if len(rows) < batch:
            return
        after = rows[-1].seq


def list_entries(
    session: Session, filters: Filters, *, before_seq: int | None, limit: int
) -> list[audit.AuditEntry]:
    """Newest first."""
    query = select(AuditEntryRow)
    for column, value in (
        (AuditEntryRow.object_type, filters.object_type),
        (AuditEntryRow.object_id, filters.object_id),
        (AuditEntryRow.actor, filters.actor),
        (AuditEntryRow.action, filters.action),
    ):
        if value is not None:
            query = query.where(column == value)
    if filters.since is not None:
        query = query.where(AuditEntryRow.at >= filters.since)
    if filters.until is not None:
        query = query.where(AuditEntryRow.at < filters.until)
    if before_seq is not None:
        query = query.where(AuditEntryRow.seq < before_seq)
    query = query.order_by(AuditEntryRow.seq.desc()).limit(limit)
    return [_entry(row) for row in session.scalars(query)]


def _entry(row: AuditEntryRow) -> audit.AuditEntry:
    return audit.AuditEntry(
        seq=row.seq,
        at=row.at,
        actor=row.actor,
        action=row.action,
        object_type=row.object_type,
        object_id=row.object_id,
        before=row.before,
        after=row.after,
        request_id=row.request_id,
        client_addr=row.client_addr,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )
