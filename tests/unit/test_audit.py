"""The audit log's hash chain detects edits, deletions and truncation."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import delete, select, update

from signoff import errors
from signoff.domain.principals import Role
from signoff.services import audit
from signoff.store.tables import AuditEntryRow
from tests import factories as f


@pytest.fixture
def history(db):
    """A few entries: users, a team, an approval and its decision."""
    pipeline = f.user(db, "pipeline@example.com")
    f.user(db, "alice@example.com")
    f.team(db, "owners", "alice@example.com")
    f.create(db, pipeline)
    count, broken = audit.verify(db, f.CLI)
    assert (broken, count) == (None, 5)
    return count


def test_an_intact_chain_verifies(db, history):
    assert audit.verify(db, f.CLI) == (history, None)


def test_editing_any_field_breaks_the_chain_at_that_entry(db, history):
    with db.write() as session:
        session.execute(
            update(AuditEntryRow).where(AuditEntryRow.seq == 3).values(actor="user:someone-else")
        )
    _, broken = audit.verify(db, f.CLI)
    assert broken.seq == 3
    assert "edited" in broken.reason


def test_editing_the_before_after_json_breaks_the_chain(db, history):
    with db.write() as session:
        after = session.scalars(select(AuditEntryRow.after).where(AuditEntryRow.seq == 2)).one()
        session.execute(
            update(AuditEntryRow)
            .where(AuditEntryRow.seq == 2)
            .values(after=after | {"role": "admin"})
        )
    assert audit.verify(db, f.CLI)[1].seq == 2


def test_deleting_an_entry_in_the_middle_is_reported(db, history):
    with db.write() as session:
        session.execute(delete(AuditEntryRow).where(AuditEntryRow.seq == 2))
    _, broken = audit.verify(db, f.CLI)
    assert broken.seq == 2
    assert "missing" in broken.reason


def test_deleting_the_newest_entries_is_reported(db, history):
    with db.write() as session:
        session.execute(delete(AuditEntryRow).where(AuditEntryRow.seq >= history - 1))
    _, broken = audit.verify(db, f.CLI)
    assert "removed from the end" in broken.reason


def test_rehashing_an_edited_entry_still_breaks_the_next_link(db, history):
    from signoff.domain import audit as chain

    with db.write() as session:
        row = session.get(AuditEntryRow, 2)
        row.actor = "user:forger"
        entry = chain.AuditEntry(
            **{c: getattr(row, c) for c in chain.AuditEntry.__dataclass_fields__}
        )
        row.hash = chain.entry_hash(row.prev_hash, chain.hashed_fields(entry))
    _, broken = audit.verify(db, f.CLI)
    assert broken.seq == 3
    assert "link" in broken.reason


def test_export_yields_every_entry_in_order_as_json(db, history):
    entries = list(audit.export(db, f.CLI))
    assert [e.seq for e in entries] == list(range(1, history + 1))
    json.dumps([e.after for e in entries])


def test_members_cannot_read_the_audit_log(db, history):
    member = f.user(db, "member@example.com", role=Role.MEMBER)
    with pytest.raises(errors.PermissionDenied):
        audit.verify(db, f.context(db, member))
