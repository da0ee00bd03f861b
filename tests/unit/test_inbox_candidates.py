"""The inbox reads a person's few approvals by key (``store/inbox.py``: candidates) and walks
the deadline order when they have many; both ways show the same pages and counts."""

from __future__ import annotations

import itertools

import pytest

from signoff import schemas
from signoff.domain.approvals import Status, Verdict
from signoff.domain.principals import Context
from signoff.services import approval_settlement, inbox
from signoff.store import inbox as inbox_store
from signoff.store.engine import Database
from tests import factories


@pytest.fixture
def dana(db: Database) -> Context:
    """Dana is an approver of some approvals (by name or through her team), requested a few
    herself, and is no part of others; some are settled."""
    dana = factories.user(db, "dana@example.com")
    erin = factories.user(db, "erin@example.com")
    factories.team(db, "data-owners", "dana@example.com")
    factories.team(db, "finance", "erin@example.com")
    pipeline = factories.user(db, "pipeline@example.com")
    asked = itertools.cycle(["team:data-owners", "dana@example.com", "team:finance"])
    for n in range(18):
        factories.create(
            db,
            dana if n % 5 == 0 else pipeline,
            title=f"{'Apply batch' if n % 2 else 'Promote model'} {n}",
            approvers=[next(asked)],
            labels=["etl" if n % 3 else "ml"],
            timeout=f"{n + 1}h",
        )
    ctx = factories.context(db, erin)
    for approval in inbox.list_inbox(db, ctx, inbox.Query()).page.approvals[:3]:
        decision = schemas.DecisionCreate(verdict=Verdict.APPROVE, comment="ok")
        approval_settlement.decide(db, ctx, approval.id, decision)
    return factories.context(db, dana)


QUERIES = [
    inbox.Query(view=view, status=status, label=label, text=text, latest_first=latest)
    for view in inbox.View
    for status in (Status.PENDING, Status.APPROVED, None)
    for label, text in (("", ""), ("etl", ""), ("", "batch"), ("", "zz"), ("ml", "model"))
    for latest in (False, True)
]


def test_a_persons_approvals_read_by_key_show_what_the_deadline_walk_shows(db, dana, monkeypatch):
    by_key = [inbox.list_inbox(db, dana, query, limit=4) for query in QUERIES]
    monkeypatch.setattr(inbox_store, "MATCH_CAP", 0)  # every candidate set is too big
    walked = [inbox.list_inbox(db, dana, query, limit=4) for query in QUERIES]
    for query, key, walk in zip(QUERIES, by_key, walked, strict=True):
        assert [a.id for a in key.page.approvals] == [a.id for a in walk.page.approvals], query
        assert key.page.next_cursor == walk.page.next_cursor, query
        if walk.counts:  # the walk counts only unfiltered views
            assert key.counts == walk.counts, query
    assert any(a.page.approvals for a in by_key)


def test_a_person_who_decides_nothing_gets_an_empty_counted_inbox(db, dana):
    nobody = factories.context(db, factories.user(db, "new@example.com"))
    answer = inbox.list_inbox(db, nobody, inbox.Query(label="etl"))
    assert answer.page.approvals == []
    assert answer.counts == dict.fromkeys(Status, 0)  # read from no candidates: counted
