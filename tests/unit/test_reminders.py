"""Reminders and escalation: the rules that place them, and firing them on a real database
(SQLite, and PostgreSQL when SIGNOFF_TEST_DATABASE_URL is set), with time passed as ``now``."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from signoff import errors, schemas
from signoff.domain import approvals as approvals_domain
from signoff.domain import reminders
from signoff.domain.audit import AuditEntry
from signoff.domain.policies import ApproverRef, Escalation
from signoff.domain.principals import Role, system_context
from signoff.services import approval_settlement, approvals, audit, principals
from signoff.services import reminders as reminders_service
from signoff.store.engine import Database
from signoff.store.tables import ApprovalTimerRow, DeliveryRow, EventRow
from tests import factories as f

SCHEDULER = system_context("scheduler")
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


# The rules


def test_reminders_are_durations_in_increasing_order():
    assert reminders.parse_reminders(["4h", "12h", 86000]) == (14400, 43200, 86000)
    for wrong, says in [
        (["12h", "4h"], "increasing order"),
        (["4h", "4h"], "without repeats"),
        (["soon"], "is not a duration"),
        ([f"{n}m" for n in range(1, 12)], "at most 10 reminders"),
    ]:
        with pytest.raises(errors.InvalidInput, match=says) as caught:
            reminders.parse_reminders(wrong)
        assert caught.value.extra["field"] == "reminders"


def test_reminders_and_escalation_must_come_before_the_deadline():
    team = (ApproverRef("team", "team_1", "oncall"),)
    reminders.check_before_deadline(24 * 3600, (4 * 3600, 23 * 3600), Escalation(20 * 3600, team))
    with pytest.raises(errors.InvalidInput, match="reminder 1d is not before the deadline") as c:
        reminders.check_before_deadline(24 * 3600, (4 * 3600, 24 * 3600), None)
    assert c.value.extra["field"] == "reminders"
    with pytest.raises(errors.InvalidInput, match="escalation after 1d2h is not before") as c:
        reminders.check_before_deadline(24 * 3600, (), Escalation(26 * 3600, team))
    assert c.value.extra["field"] == "escalation.after"


def test_the_schedule_places_each_timer_after_creation_in_order():
    team = (ApproverRef("team", "team_1", "oncall"),)
    timers = reminders.schedule(
        "ap_1", T0, 24 * 3600, (4 * 3600, 20 * 3600), Escalation(72000, team)
    )
    assert [(t.seq, t.kind, t.due_at) for t in timers] == [
        (0, reminders.Kind.REMINDER, T0 + 4 * HOUR),
        (1, reminders.Kind.REMINDER, T0 + 20 * HOUR),  # a reminder first at the same moment
        (2, reminders.Kind.ESCALATION, T0 + 20 * HOUR),
    ]
    assert timers[2].approvers == team
    assert reminders.reminder_number(timers, timers[1]) == (2, 2)
    shown = reminders.schedule_json(timers)
    assert shown["reminders"][0] == {
        "at": (T0 + 4 * HOUR).isoformat(),
        "status": "scheduled",
        "sent_at": None,
    }
    assert shown["escalation"]["approvers"] == [{"kind": "team", "id": "team_1", "name": "oncall"}]


# Creating and firing


@pytest.fixture
def people(db: Database) -> dict[str, object]:
    f.team(db, "owners")
    f.team(db, "oncall")
    return {
        "pipeline": f.user(db, "pipeline@example.com"),
        "alice": f.user(db, "alice@example.com", teams=("owners",)),
        "bob": f.user(db, "bob@example.com", teams=("owners",)),
        "carol": f.user(db, "carol@example.com", teams=("oncall",)),
        "dave": f.user(db, "dave@example.com", teams=("oncall", "owners")),
        "admin": f.user(db, "root@example.com", role=Role.ADMIN),
    }


def create(db: Database, people: dict[str, object], **fields: object) -> approvals.Created:
    asked: dict[str, object] = {
        "approvers": ["team:owners"],
        "policy": {"quorum": 2},
        "reminders": ["4h", "12h"],
        "escalation": {"after": "20h", "approvers": ["team:oncall", "alice@example.com"]},
    }
    spec = f.approval_spec(**(asked | fields))
    return approvals.create(
        db,
        f.context(db, people["pipeline"]),  # type: ignore[arg-type]
        spec,
        secret_key=f.SECRET_KEY,
        now=T0,
        email_approvers=True,
    )


def decide(db: Database, who: object, approval_id: str, verdict: str = "approve") -> None:
    spec = schemas.DecisionCreate(verdict=verdict)  # type: ignore[arg-type]
    approval_settlement.decide(db, f.context(db, who), approval_id, spec, now=T0 + HOUR)  # type: ignore[arg-type]


def events_of(db: Database, approval_id: str, event_type: str) -> list[dict[str, object]]:
    with db.read() as session:
        rows = session.scalars(
            select(EventRow.data)
            .where(EventRow.subject == approval_id, EventRow.type == event_type)
            .order_by(EventRow.id)
        )
        return list(rows)


def emails_of(db: Database, approval_id: str, event_type: str) -> list[str]:
    with db.read() as session:
        rows = session.scalars(
            select(DeliveryRow.target)
            .join(EventRow, EventRow.id == DeliveryRow.event_id)
            .where(
                EventRow.subject == approval_id,
                EventRow.type == event_type,
                DeliveryRow.subscription_id.is_(None),
            )
        )
        return sorted(rows)


def audit_of(db: Database, people: dict[str, object], approval_id: str) -> list[AuditEntry]:
    admin = f.context(db, people["admin"])  # type: ignore[arg-type]
    return audit.list_entries(db, admin, audit.Filters(object_id=approval_id))[0]


def test_an_approval_shows_its_schedule_from_creation(db, people):
    approval = create(db, people).approval
    shown = approvals.get(db, f.context(db, people["alice"]), approval.id)  # type: ignore[arg-type]
    data = schemas.ApprovalPublic.model_validate({"url": "x"} | approvals_domain.as_json(shown))
    assert [r.at for r in data.reminders] == [T0 + 4 * HOUR, T0 + 12 * HOUR]
    assert all(r.status == "scheduled" for r in data.reminders)
    assert data.escalation is not None
    assert data.escalation.at == T0 + 20 * HOUR
    assert [a.name for a in data.escalation.approvers] == ["oncall", "alice@example.com"]
    assert approval_settlement.next_due_at(db) == T0 + 4 * HOUR


def test_a_reminder_emails_only_those_who_have_not_decided_and_fires_once(db, people):
    approval = create(db, people).approval
    decide(db, people["alice"], approval.id)
    assert reminders_service.fire_due(db, SCHEDULER, now=T0 + 4 * HOUR - timedelta(seconds=1)) == 0
    assert reminders_service.fire_due(db, SCHEDULER, now=T0 + 4 * HOUR) == 1
    assert reminders_service.fire_due(db, SCHEDULER, now=T0 + 4 * HOUR) == 0
    [event] = events_of(db, approval.id, "approval.reminder_due")
    assert (event["reminder"], event["reminders"]) == (1, 2)
    assert event["deadline_at"] == (T0 + 24 * HOUR).isoformat()
    assert [p["email"] for p in event["undecided"]] == ["bob@example.com", "dave@example.com"]
    assert emails_of(db, approval.id, "approval.reminder_due") == [
        "bob@example.com",
        "dave@example.com",
    ]
    entries = audit_of(db, people, approval.id)
    [remind] = [e for e in entries if e.action == "approval.remind"]
    assert remind.actor == "system:scheduler"
    assert remind.after == {
        "reminder": 1,
        "of": 2,
        "reminded": ["bob@example.com", "dave@example.com"],
    }
    shown = approvals.get(db, f.context(db, people["alice"]), approval.id)  # type: ignore[arg-type]
    first, second = shown.timers[:2]
    assert (first.state, first.done_at) == (reminders.State.DONE, T0 + 4 * HOUR)
    assert second.state is reminders.State.SCHEDULED
    assert approval_settlement.next_due_at(db) == T0 + 12 * HOUR


def test_escalation_adds_approvers_who_may_decide_and_emails_only_the_new_people(db, people):
    approval = create(db, people, reminders=[]).approval
    decide(db, people["bob"], approval.id)
    with pytest.raises(errors.ApprovalNotFound):  # carol is not an approver yet
        decide(db, people["carol"], approval.id)
    assert reminders_service.fire_due(db, SCHEDULER, now=T0 + 20 * HOUR) == 1
    [event] = events_of(db, approval.id, "approval.escalated")
    assert [r["name"] for r in event["previous_approvers"]] == ["owners"]
    assert [r["name"] for r in event["added_approvers"]] == ["oncall", "alice@example.com"]
    assert [r["name"] for r in event["approvers"]] == ["owners", "oncall", "alice@example.com"]
    # dave and alice could decide already (owners); bob decided: carol alone is new.
    assert emails_of(db, approval.id, "approval.escalated") == ["carol@example.com"]
    assert [p["email"] for p in event["emailed"]] == ["carol@example.com"]
    decide(db, people["carol"], approval.id)
    settled = approvals.get(db, f.context(db, people["carol"]), approval.id)  # type: ignore[arg-type]
    assert settled.status.value == "approved"  # quorum 2: bob and carol
    assert [r.name for r in settled.approvers] == ["owners", "oncall", "alice@example.com"]
    mine = approvals.list_approvals(
        db,
        f.context(db, people["carol"]),  # type: ignore[arg-type]
        decidable_by_me=False,
    )[0]
    assert [a.id for a in mine] == [approval.id]  # she sees it among hers
    entries = audit_of(db, people, approval.id)
    [escalate] = [e for e in entries if e.action == "approval.escalate"]
    assert escalate.before == {"approvers": ["team:owners"]}
    assert escalate.after is not None
    assert escalate.after["added"] == ["team:oncall", "user:alice@example.com"]


def test_a_settled_approval_fires_nothing_and_leaves_no_timer_scheduled(db, people):
    approval = create(db, people).approval
    decide(db, people["alice"], approval.id, "reject")
    with db.read() as session:
        states = session.scalars(
            select(ApprovalTimerRow.state).where(ApprovalTimerRow.approval_id == approval.id)
        )
        assert set(states) == {"skipped"}
    assert reminders_service.fire_due(db, SCHEDULER, now=T0 + 23 * HOUR) == 0
    assert events_of(db, approval.id, "approval.reminder_due") == []
    assert events_of(db, approval.id, "approval.escalated") == []
    shown = approvals.get(db, f.context(db, people["alice"]), approval.id)  # type: ignore[arg-type]
    assert [t.state.value for t in shown.timers] == ["skipped"] * 3
    assert approval_settlement.next_due_at(db) is None


def test_a_deadline_passed_before_the_timers_fired_skips_them_and_still_settles(db, people):
    approval = create(db, people, reminders=["1h"], escalation=None, timeout="2h").approval
    assert reminders_service.fire_due(db, SCHEDULER, now=T0 + 3 * HOUR) == 0  # skipped
    assert approval_settlement.expire_due(db, SCHEDULER, now=T0 + 3 * HOUR) == 1
    assert approvals.get(db, f.context(db, people["alice"]), approval.id).status.value == "rejected"  # type: ignore[arg-type]


def test_reminders_after_the_deadline_are_refused_naming_the_field(db, people):
    with pytest.raises(errors.InvalidInput, match="not before the deadline") as caught:
        create(db, people, timeout="10h")
    assert caught.value.extra["field"] == "reminders"
    with pytest.raises(errors.InvalidInput) as caught:
        create(db, people, reminders=None, timeout="10h")
    assert caught.value.extra["field"] == "escalation.after"
    with pytest.raises(errors.UnknownApprover):
        create(db, people, escalation={"after": "1h", "approvers": ["team:nobody"]})
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(ApprovalTimerRow)) == 0


def test_a_named_policy_fixes_reminders_and_escalation(db, people):
    f.policy(
        db,
        "gate",
        timeout="24h",
        reminders=["4h"],
        escalation={"after": "20h", "approvers": ["team:oncall"]},
    )
    made = create(db, people, approvers=None, policy="gate", reminders=None, escalation=None)
    assert [t.kind.value for t in made.approval.timers] == ["reminder", "escalation"]
    create(db, people, approvers=None, policy="gate", reminders=["4h"], escalation=None)
    with pytest.raises(errors.InvalidInput, match="fixes the reminders") as caught:
        create(db, people, approvers=None, policy="gate", reminders=["1h"], escalation=None)
    assert caught.value.extra["field"] == "reminders"
    with pytest.raises(errors.InvalidInput, match="leave escalation out") as caught:
        create(db, people, approvers=None, policy="gate", reminders=None)
    assert caught.value.extra["field"] == "escalation"
    with pytest.raises(errors.InvalidInput, match="not before the deadline") as caught:
        f.policy(db, "late", timeout="2h", reminders=["4h"])
    assert caught.value.extra["field"] == "reminders"


def test_a_policy_without_reminders_lets_each_request_set_them(db, people):
    f.policy(db, "open")
    made = create(db, people, approvers=None, policy="open", reminders=["1h"], escalation=None)
    assert [t.kind.value for t in made.approval.timers] == ["reminder"]


def test_two_schedulers_racing_fire_each_timer_once(db, people):
    made = [create(db, people).approval for _ in range(5)]
    fired: list[int] = []
    start = threading.Barrier(4)

    def scheduler() -> None:
        start.wait()
        fired.append(reminders_service.fire_due(db, SCHEDULER, now=T0 + 21 * HOUR))

    threads = [threading.Thread(target=scheduler) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(fired) == 5 * 2  # the latest reminder (the first is overtaken) and escalation
    for approval in made:
        assert len(events_of(db, approval.id, "approval.reminder_due")) == 1
        assert len(events_of(db, approval.id, "approval.escalated")) == 1
    assert emails_of(db, made[0].id, "approval.escalated") == ["carol@example.com"]


def test_a_scheduler_that_was_away_sends_only_the_latest_due_reminder(db, people):
    approval = create(db, people, escalation=None).approval
    reminders_service.fire_due(db, SCHEDULER, now=T0 + 13 * HOUR)
    [event] = events_of(db, approval.id, "approval.reminder_due")
    assert (event["reminder"], event["reminders"]) == (2, 2)
    shown = approvals.get(db, f.context(db, people["alice"]), approval.id)  # type: ignore[arg-type]
    assert [t.state.value for t in shown.timers] == ["skipped", "done"]


def test_subscription_filters_pick_reminders_and_escalations_by_their_data(db, people):
    later = {"type": ["approval.reminder_due"], "data": {"reminder": [{"numeric": [">=", 2]}]}}
    f.subscription(db, "later-reminders", filter=later)
    f.subscription(db, "escalations", filter={"type": ["approval.escalated"]})
    approval = create(db, people).approval
    for hours in (4, 12, 20):
        reminders_service.fire_due(db, SCHEDULER, now=T0 + hours * HOUR)
    with db.read() as session:
        rows = session.execute(
            select(EventRow.type, EventRow.data["reminder"].as_integer())
            .join(DeliveryRow, DeliveryRow.event_id == EventRow.id)
            .where(EventRow.subject == approval.id, DeliveryRow.subscription_id.is_not(None))
            .order_by(EventRow.id)
        )
        assert [tuple(row) for row in rows] == [
            ("approval.reminder_due", 2),
            ("approval.escalated", None),
        ]


def test_an_approval_past_its_deadline_when_the_scheduler_returns_gets_no_late_reminder(db, people):
    approval = create(db, people, escalation=None, timeout="13h").approval
    later = T0 + 14 * HOUR  # the scheduler's order: deadlines first, then timers
    assert approval_settlement.expire_due(db, SCHEDULER, now=later) == 1
    assert reminders_service.fire_due(db, SCHEDULER, now=later) == 0
    assert events_of(db, approval.id, "approval.reminder_due") == []


def test_a_team_an_escalation_will_add_cannot_be_deleted_until_the_approval_settles(db, people):
    approval = create(db, people).approval
    admin = f.context(db, people["admin"])  # type: ignore[arg-type]
    with pytest.raises(
        errors.Conflict, match=f"pending approvals wait on team oncall .{approval.id}"
    ):
        principals.delete_team(db, admin, "oncall")
    decide(db, people["alice"], approval.id, "reject")
    principals.delete_team(db, admin, "oncall")


def test_timers_of_an_approval_past_its_deadline_are_skipped_not_fired(db, people):
    """The scheduler expires at most ``limit`` approvals a pass, then fires timers (and
    another worker may fire timers meanwhile): a timer of an approval past its deadline but
    not yet expired is skipped, the expiry settles it; no reminder or escalation after it."""
    late = [create(db, people, timeout="24h").approval for _ in range(2)]
    now = T0 + 30 * HOUR  # the scheduler was down: every deadline and timer is past
    # one pass of Scheduler.run, with limit 1 standing in for 200 of 201+ overdue approvals
    assert approval_settlement.expire_due(db, SCHEDULER, now=now, limit=1) == 1
    reminders_service.fire_due(db, SCHEDULER, now=now)
    [second] = [a for a in late if approvals.get(db, SCHEDULER, a.id).is_pending]
    assert events_of(db, second.id, "approval.escalated") == []
    assert emails_of(db, second.id, "approval.reminder_due") == []
    with db.read() as session:
        states = session.scalars(
            select(ApprovalTimerRow.state).where(ApprovalTimerRow.approval_id == second.id)
        ).all()
    assert states
    assert {str(state) for state in states} == {"skipped"}
