"""An approval's notification summary: each destination its events are failing to reach,
since when, how many attempts, the last error; gone once they arrive. Targets are shown as
the reader may see them."""

from __future__ import annotations

import pytest

from signoff.domain import destinations
from signoff.domain.principals import Role
from signoff.services import approvals
from tests import factories as f
from tests.factories import CLI, DIE_AT_ONCE, LOOPBACK, SECRET_KEY

CALLBACK = "http://127.0.0.1:9/cb?token=s3cr3t"


@pytest.fixture
def people(db):
    return {
        "pipeline": f.user(db, "pipeline@example.com"),
        "alice": f.user(db, "alice@example.com"),
        "admin": f.user(db, "root@example.com", role=Role.ADMIN),
    }


def canceled_with_callback(db, people) -> str:
    approval = f.create(db, people["pipeline"], callback_url=CALLBACK).approval
    approvals.cancel(db, f.context(db, people["pipeline"]), approval.id)
    return approval.id


def summary(db, person, approval_id):
    return approvals.notifications_of(db, f.context(db, person), approval_id)


def test_a_failing_callback_shows_with_its_attempts_counting_up_until_it_arrives(db, people):
    approval_id = canceled_with_callback(db, people)
    assert summary(db, people["pipeline"], approval_id) == []  # not tried yet: not failing
    f.attempt_due(db, ok=False)
    f.attempt_due(db, ok=False)
    (failing,) = summary(db, people["pipeline"], approval_id)
    assert (failing.purpose, failing.target_kind, failing.status) == (
        "callback",
        "callback",
        "failing",
    )
    assert failing.target == destinations.redacted(CALLBACK)
    assert (failing.attempts, failing.last_error) == (2, "HTTP 503")
    first_failure = failing.failing_since
    f.attempt_due(db, ok=False)
    (failing,) = summary(db, people["alice"], approval_id)
    assert (failing.attempts, failing.failing_since) == (3, first_failure)
    f.attempt_due(db, ok=True)
    assert summary(db, people["pipeline"], approval_id) == []


def test_a_dead_callback_shows_as_dead(db, people):
    approval_id = canceled_with_callback(db, people)
    f.attempt_due(db, ok=False, backoff=DIE_AT_ONCE)
    (failing,) = summary(db, people["admin"], approval_id)
    assert (failing.status, failing.attempts) == ("dead", 1)
    approval, same = approvals.get_with_notifications(db, CLI, approval_id)
    assert (approval.id, same) == (approval_id, [failing])


def test_one_destination_failing_several_events_is_one_entry(db, people):
    f.subscription(db, "everything", target="http://127.0.0.1:9/hook?token=s3cr3t")
    approval_id = canceled_with_callback(db, people)
    f.attempt_due(db, ok=False)
    found = summary(db, people["pipeline"], approval_id)
    assert [(s.purpose, s.attempts) for s in found] == [("subscription", 3), ("callback", 1)]
    assert "s3cr3t" not in str(found)


def test_approvers_addresses_are_shown_to_the_requester_and_masked_to_other_approvers(db, people):
    f.user(db, "bob@example.com")
    created = approvals.create(
        db,
        f.context(db, people["pipeline"]),
        f.approval_spec(approvers=["alice@example.com", "bob@example.com"]),
        secret_key=SECRET_KEY,
        allowed_networks=LOOPBACK,
        email_approvers=True,
    )
    f.attempt_due(db, ok=False)
    shown = {
        who: [s.target for s in summary(db, people[who], created.approval.id)]
        for who in ("pipeline", "alice", "admin")
    }
    assert shown["pipeline"] == shown["admin"] == ["alice@example.com", "bob@example.com"]
    assert shown["alice"] == ["a…@example.com", "b…@example.com"]
    listed = approvals.deliveries_of(db, f.context(db, people["alice"]), created.approval.id)
    assert [(d.purpose, d.target) for d in listed] == [
        ("approver", "a…@example.com"),
        ("approver", "b…@example.com"),
    ]
