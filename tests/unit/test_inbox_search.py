"""The inbox's text search (``store/inbox.py``): a case-insensitive substring of the title,
found through the trigram index of migration 0009 when the text is long enough and rare
enough, else by testing titles in deadline order; the same answers either way."""

from __future__ import annotations

import pytest

from signoff.domain.approvals import Status
from signoff.domain.principals import Context, Role
from signoff.services import inbox
from signoff.store import inbox as inbox_store
from signoff.store import migrate
from signoff.store.engine import Database
from tests import factories

TITLES = [
    "Apply batch 7 for customer 42?",
    "Promote churn-model v12 to prod",
    '100% of rows_flagged in EXPORT "nightly" \\ backslash',
    "Rollback the APPLY of batch 9",
    "Refund Müller & Söhne",
]


@pytest.fixture
def people(db: Database) -> tuple[Context, Context]:
    dana = factories.user(db, "dana@example.com")
    factories.user(db, "erin@example.com")
    factories.team(db, "data-owners", "dana@example.com")
    factories.team(db, "finance", "erin@example.com")
    pipeline = factories.user(db, "pipeline@example.com")
    for n, title in enumerate(TITLES):
        factories.create(
            db, pipeline, title=title, approvers=["team:data-owners"], timeout=f"{n + 1}h"
        )
    factories.create(db, pipeline, title="Apply batch 8 for finance", approvers=["team:finance"])
    admin = factories.user(db, "root@example.com", role=Role.ADMIN)
    return factories.context(db, dana), factories.context(db, admin)


def found(db: Database, ctx: Context, text: str, **query: object) -> list[str]:
    answer = inbox.list_inbox(db, ctx, inbox.Query(text=text, **query))  # type: ignore[arg-type]
    return [a.title for a in answer.page.approvals]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("apply", [TITLES[0], TITLES[3]]),  # any case, in deadline order
        ("BATCH", [TITLES[0], TITLES[3]]),
        ("0% of", [TITLES[2]]),  # LIKE's wildcards are plain characters
        ("rows_f", [TITLES[2]]),
        ('"nightly"', [TITLES[2]]),  # FTS5's quotes too
        ("\\ back", [TITLES[2]]),
        ("Müller", [TITLES[4]]),
        ("churn-model v12", [TITLES[1]]),  # spaces and punctuation inside the text
        ("  v12 ", [TITLES[1]]),  # the search box's spaces around it are not
        ("7 ", [TITLES[0]]),  # shorter than a trigram: titles are tested one by one
        ("nothing like it", []),
        ("BAT\x00CH", [TITLES[0], TITLES[3]]),  # a NUL is in no title: left out
    ],
)
def test_a_search_finds_titles_containing_the_text(db, people, text, expected):
    dana, _admin = people
    assert found(db, dana, text, status=Status.PENDING) == expected


def test_a_search_finds_only_what_the_person_may_see(db, people):
    dana, admin = people
    assert found(db, dana, "Apply batch", view=inbox.View.ALL) == [TITLES[0]]
    assert sorted(found(db, admin, "Apply batch", view=inbox.View.ALL)) == sorted(
        [TITLES[0], "Apply batch 8 for finance"]
    )


def test_a_search_the_index_answers_is_counted_per_status(db, people):
    dana, _admin = people
    answer = inbox.list_inbox(db, dana, inbox.Query(text="batch"))
    assert answer.counts[Status.PENDING] == 2
    assert answer.counts[Status.APPROVED] == 0
    assert answer.page.searched_all


def test_a_text_in_more_titles_than_the_index_returns_walks_the_deadline_order(
    db, people, monkeypatch
):
    dana, _admin = people
    monkeypatch.setattr(inbox_store, "MATCH_CAP", 1)
    with db.read() as session:
        assert inbox_store.find_titles(session, "batch") is None  # two titles contain it
        assert inbox_store.find_titles(session, "churn") is not None
    answer = inbox.list_inbox(db, dana, inbox.Query(text="batch"))
    assert [a.title for a in answer.page.approvals] == [TITLES[0], TITLES[3]]
    assert answer.counts == {}  # each count would walk its own rows
    assert answer.page.searched_all


def test_a_short_text_that_matches_nothing_says_how_far_it_looked(db, people, monkeypatch):
    _dana, admin = people  # an admin's "all" view has no candidates: the deadline order is walked
    monkeypatch.setattr(inbox_store, "SEARCH_SCAN_LIMIT", 3)
    answer = inbox.list_inbox(db, admin, inbox.Query(text="zz", view=inbox.View.ALL))
    assert answer.page.approvals == []
    assert not answer.page.searched_all
    with db.read() as session:
        assert inbox_store.find_titles(session, "zz") is None  # too short for the index


def test_titles_of_approvals_made_before_the_index_are_found_after_the_upgrade(db, people):
    dana, _admin = people
    migrate.downgrade(db, "0008")
    migrate.upgrade(db)
    assert found(db, dana, "churn-model") == [TITLES[1]]
