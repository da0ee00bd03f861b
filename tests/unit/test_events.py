"""The event catalogue: every type signoff writes is in it, with a version; internal types and
fields stay internal; every envelope has the same members, and the approval events carry the
status they left."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from signoff import schemas
from signoff.domain import events
from signoff.domain.principals import system_context
from signoff.services import approval_settlement
from signoff.store import outbox
from tests import factories as f

ENVELOPE = {"id", "type", "version", "timestamp", "subject", "actor", "data"}


def test_every_event_type_named_in_code_is_in_the_catalogue():
    named = {
        value
        for name, value in vars(events).items()
        if name.isupper() and not name.startswith("_") and isinstance(value, str)
    }
    assert named
    assert named <= set(events.CATALOGUE)


def test_every_type_has_a_version_and_says_what_it_means_and_holds():
    for name, kind in events.CATALOGUE.items():
        assert kind.name == name
        assert kind.version >= 1
        assert kind.description.endswith("."), name
        assert kind.data, name


def test_emails_with_link_nonces_are_internal_and_hide_the_nonce():
    for name in (events.INVITATION_SENT, events.PASSWORD_RESET_REQUESTED):
        assert events.CATALOGUE[name].internal
        assert "link_nonce" in events.CATALOGUE[name].internal_fields
    assert events.INVITATION_SENT not in events.public_types()
    assert events.APPROVAL_SETTLED in events.public_types()


def test_planned_types_are_declared_without_a_producer():
    planned = {name for name, kind in events.CATALOGUE.items() if not kind.produced}
    assert planned == {
        "model.version.registered",
        "model.promoted",
        "loop.completed",
    }


def test_an_unknown_type_is_a_bug_not_an_event():
    with pytest.raises(ValueError, match="not in the catalogue"):
        events.event_type("approval.exploded")


def test_the_public_envelope_leaves_out_internal_fields_only():
    event = events.Event(
        id="evt_1",
        type=events.APPROVAL_SETTLED,
        subject="ap_1",
        actor="user:usr_1",
        data={"id": "ap_1", "status": "approved", "callback_url": "https://x.example/?t=s"},
        occurred_at=datetime(2026, 11, 22, tzinfo=UTC),
    )
    assert set(event.envelope()) == ENVELOPE
    assert event.envelope()["data"]["callback_url"] == "https://x.example/?t=s"
    public = event.public_envelope()
    assert set(public) == ENVELOPE
    assert public["data"] == {"id": "ap_1", "status": "approved"}
    assert public["version"] == 1


@pytest.fixture
def people(db):
    return {
        "pipeline": f.user(db, "pipeline@example.com"),
        "alice": f.user(db, "alice@example.com"),
    }


def _events_of(db, approval_id: str) -> dict[str, events.Event]:
    with db.read() as session:
        return {event.type: event for event in outbox.events_of_subject(session, approval_id)}


def test_a_decision_that_settles_says_the_status_it_left_and_reached(db, people):
    approval = f.create(db, people["pipeline"]).approval
    spec = schemas.DecisionCreate(verdict="reject", comment="no")
    approval_settlement.decide(db, f.context(db, people["alice"]), approval.id, spec)
    written = _events_of(db, approval.id)
    decided = written[events.APPROVAL_DECIDED].data
    assert (decided["previous_status"], decided["status"]) == ("pending", "rejected")
    assert decided["title"] == approval.title
    assert written[events.APPROVAL_SETTLED].data["previous_status"] == "pending"
    assert written[events.APPROVAL_SETTLED].data["status"] == "rejected"
    assert {event.version for event in written.values()} == {1}


def test_a_decision_short_of_the_quorum_leaves_the_approval_pending(db, people):
    approval = f.create(db, people["pipeline"], policy={"quorum": 2}).approval
    spec = schemas.DecisionCreate(verdict="approve")
    approval_settlement.decide(db, f.context(db, people["alice"]), approval.id, spec)
    decided = _events_of(db, approval.id)[events.APPROVAL_DECIDED].data
    assert (decided["previous_status"], decided["status"]) == ("pending", "pending")


def test_cancel_and_expiry_say_the_status_they_left(db, people):
    canceled = f.create(db, people["pipeline"]).approval
    approval_settlement.cancel(
        db, f.context(db, people["pipeline"]), canceled.id, reason="not needed"
    )
    data = _events_of(db, canceled.id)[events.APPROVAL_CANCELED].data
    assert (data["previous_status"], data["status"], data["reason"]) == (
        "pending",
        "canceled",
        "not needed",
    )
    expiring = f.create(db, people["pipeline"], timeout=1, on_timeout="expire").approval
    later = datetime.now(UTC) + timedelta(seconds=5)
    assert approval_settlement.expire_due(db, system_context("scheduler"), now=later) == 1
    data = _events_of(db, expiring.id)[events.APPROVAL_EXPIRED].data
    assert (data["previous_status"], data["status"], data["reason"]) == (
        "pending",
        "expired",
        "timeout",
    )
