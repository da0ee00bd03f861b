"""Reading the audit log: verify the chain, export it, list it."""

from __future__ import annotations

from collections.abc import Iterator

from signoff.domain import audit
from signoff.domain.principals import Context
from signoff.store import audit as store
from signoff.store.audit import Filters
from signoff.store.engine import Database

__all__ = ["Filters", "export", "list_entries", "verify"]


def verify(db: Database, ctx: Context) -> tuple[int, audit.Break | None]:
    """How many entries were checked, and the first broken link if any."""
    _require_admin(ctx)
    checker = audit.ChainChecker()
    with db.read() as session:
        for entry in store.iterate(session):
            checker.feed(entry)
        head_seq, head_hash = store.head(session)
    return checker.checked, checker.finish(head_seq, head_hash)


def export(db: Database, ctx: Context) -> Iterator[audit.AuditEntry]:
    _require_admin(ctx)
    with db.read() as session:
        yield from store.iterate(session)


def list_entries(
    db: Database,
    ctx: Context,
    filters: Filters,
    *,
    before_seq: int | None = None,
    limit: int = 100,
) -> tuple[list[audit.AuditEntry], int | None]:
    """Newest first; the second value is the ``before_seq`` of the next page."""
    _require_admin(ctx)
    with db.read() as session:
        entries = store.list_entries(session, filters, before_seq=before_seq, limit=limit + 1)
    page = entries[:limit]
    return page, page[-1].seq if len(entries) > limit else None


def _require_admin(ctx: Context) -> None:
    ctx.principal.require_admin()
