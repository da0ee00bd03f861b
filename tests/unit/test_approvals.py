"""Approval services on a real database: policy rules, idempotency, deadlines, listing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from signoff import errors, schemas
from signoff.domain import ids
from signoff.domain.approvals import Status
from signoff.domain.principals import Context, Principal, Role, system_context
from signoff.services import approvals
from signoff.store import outbox
from signoff.store.engine import Database
from tests import factories as f

SCHEDULER = system_context("scheduler")


@pytest.fixture
def people(db: Database) -> dict[str, object]:
    f.team(db, "data-owners")
    return {
        "pipeline": f.user(db, "pipeline@example.com"),
        "alice": f.user(db, "alice@example.com", teams=("data-owners",)),
        "bob": f.user(db, "bob@example.com", teams=("data-owners",)),
        "carol": f.user(db, "carol@example.com"),
        "admin": f.user(db, "root@example.com", role=Role.ADMIN),
    }


def decide(db: Database, who: object, approval_id: str, verdict: str = "approve", **extra: object):
    spec = schemas.DecisionCreate.model_validate({"verdict": verdict, **extra})
    return approvals.decide(db, f.context(db, who), approval_id, spec)  # type: ignore[arg-type]


def test_create_returns_a_pending_approval_and_a_working_task_token(db, people):
    created = f.create(db, people["pipeline"])
    assert created.approval.status is Status.PENDING
    assert ids.approval_id_of_token(f.SECRET_KEY, created.token) == created.approval.id
    assert ids.approval_id_of_token("another-key", created.token) is None
    assert len(created.token) > 64  # 256-bit MAC in hex, plus the id


def test_approval_by_one_approver_settles_with_the_outcome(db, people):
    approval = f.create(db, people["pipeline"]).approval
    settled = decide(db, people["alice"], approval.id, comment="looks fine")
    assert settled.status is Status.APPROVED
    assert settled.outcome == {
        "status": "approved",
        "reason": "decision",
        "decided_by": "alice@example.com",
        "comment": "looks fine",
        "form": None,
    }


def test_team_members_may_decide_for_their_team(db, people):
    approval = f.create(db, people["pipeline"], approvers=["team:data-owners"]).approval
    assert decide(db, people["bob"], approval.id).status is Status.APPROVED


def test_someone_not_listed_cannot_decide_or_learn_the_approval_exists(db, people):
    approval = f.create(db, people["pipeline"], approvers=["team:data-owners"]).approval
    with pytest.raises(errors.ApprovalNotFound):
        decide(db, people["carol"], approval.id)


def test_an_admin_who_is_not_listed_sees_but_cannot_decide(db, people):
    approval = f.create(db, people["pipeline"], approvers=["team:data-owners"]).approval
    with pytest.raises(errors.NotAnApprover):
        decide(db, people["admin"], approval.id)


def test_the_requester_is_excluded_by_default(db, people):
    approval = f.create(db, people["alice"], approvers=["team:data-owners"]).approval
    with pytest.raises(errors.RequesterCannotDecide):
        decide(db, people["alice"], approval.id)


def test_the_policy_can_let_the_requester_decide(db, people):
    approval = f.create(
        db, people["alice"], approvers=["team:data-owners"], policy={"requester_can_decide": True}
    ).approval
    assert decide(db, people["alice"], approval.id).status is Status.APPROVED


def test_quorum_needs_that_many_distinct_approvals(db, people):
    approval = f.create(
        db,
        people["pipeline"],
        approvers=["team:data-owners", "carol@example.com"],
        policy={"quorum": 2},
    ).approval
    assert decide(db, people["alice"], approval.id).status is Status.PENDING
    with pytest.raises(errors.DuplicateDecision):
        decide(db, people["alice"], approval.id)
    assert decide(db, people["carol"], approval.id).status is Status.APPROVED


def test_one_rejection_rejects_even_with_quorum_pending(db, people):
    approval = f.create(
        db, people["pipeline"], approvers=["team:data-owners"], policy={"quorum": 2}
    ).approval
    decide(db, people["alice"], approval.id)
    assert decide(db, people["bob"], approval.id, "reject").status is Status.REJECTED


def test_the_policy_can_tolerate_rejections(db, people):
    approval = f.create(
        db,
        people["pipeline"],
        approvers=["team:data-owners", "carol@example.com"],
        policy={"quorum": 2, "rejections_to_reject": 2},
    ).approval
    assert decide(db, people["alice"], approval.id, "reject").status is Status.PENDING
    decide(db, people["bob"], approval.id)
    assert decide(db, people["carol"], approval.id).status is Status.APPROVED


def test_second_decision_gets_already_decided_with_the_outcome(db, people):
    approval = f.create(db, people["pipeline"], approvers=["team:data-owners"]).approval
    decide(db, people["alice"], approval.id, "reject", comment="no")
    with pytest.raises(errors.AlreadyDecided) as raised:
        decide(db, people["bob"], approval.id)
    assert raised.value.extra["approval_status"] == "rejected"
    assert raised.value.extra["outcome"]["decided_by"] == "alice@example.com"


def test_comment_required_refuses_an_empty_comment(db, people):
    approval = f.create(db, people["pipeline"], policy={"comment_required": True}).approval
    with pytest.raises(errors.CommentRequired):
        decide(db, people["alice"], approval.id, comment="  ")
    assert decide(db, people["alice"], approval.id, comment="checked").status is Status.APPROVED


def test_form_data_is_validated_against_the_policy_schema(db, people):
    form = {
        "type": "object",
        "required": ["ticket"],
        "properties": {
            "ticket": {"type": "string", "pattern": "^OPS-[0-9]+$"},
            "rows": {"type": "integer"},
        },
    }
    approval = f.create(db, people["pipeline"], policy={"form": form}).approval
    with pytest.raises(errors.InvalidForm) as raised:
        decide(db, people["alice"], approval.id, form={"ticket": "nope", "rows": "many"})
    assert {e["field"] for e in raised.value.extra["errors"]} == {"ticket", "rows"}
    settled = decide(db, people["alice"], approval.id, form={"ticket": "OPS-12"})
    assert settled.outcome["form"] == {"ticket": "OPS-12"}


def test_an_invalid_form_schema_is_refused_at_creation(db, people):
    with pytest.raises(errors.InvalidInput):
        f.create(db, people["pipeline"], policy={"form": {"type": "no-such-type"}})


def test_unknown_approvers_are_refused_at_creation(db, people):
    with pytest.raises(errors.UnknownApprover):
        f.create(db, people["pipeline"], approvers=["team:nobody"])
    with pytest.raises(errors.UnknownApprover):
        f.create(db, people["pipeline"], approvers=["ghost@example.com"])


@pytest.mark.parametrize("timeout", ["0s", "367d", "soon", "5 parsecs"])
def test_bad_timeouts_are_refused(db, people, timeout):
    with pytest.raises(errors.InvalidInput):
        f.create(db, people["pipeline"], timeout=timeout)


def test_same_idempotency_key_and_body_returns_the_same_approval(db, people):
    ctx = f.context(db, people["pipeline"])
    spec = f.approval_spec()
    first = approvals.create(db, ctx, spec, secret_key=f.SECRET_KEY, idempotency_key="batch-42")
    again = approvals.create(db, ctx, spec, secret_key=f.SECRET_KEY, idempotency_key="batch-42")
    assert (again.approval.id, again.token, again.replayed) == (
        first.approval.id,
        first.token,
        True,
    )


def test_same_idempotency_key_with_another_body_conflicts(db, people):
    ctx = f.context(db, people["pipeline"])
    approvals.create(db, ctx, f.approval_spec(), secret_key=f.SECRET_KEY, idempotency_key="k")
    with pytest.raises(errors.IdempotencyConflict):
        approvals.create(
            db, ctx, f.approval_spec(title="other"), secret_key=f.SECRET_KEY, idempotency_key="k"
        )


def test_idempotency_keys_are_per_requester(db, people):
    spec = f.approval_spec()
    one = approvals.create(
        db, f.context(db, people["pipeline"]), spec, secret_key=f.SECRET_KEY, idempotency_key="k"
    )
    two = approvals.create(
        db, f.context(db, people["carol"]), spec, secret_key=f.SECRET_KEY, idempotency_key="k"
    )
    assert one.approval.id != two.approval.id


@pytest.mark.parametrize(
    ("on_timeout", "status"),
    [("reject", Status.REJECTED), ("approve", Status.APPROVED), ("expire", Status.EXPIRED)],
)
def test_the_deadline_applies_the_on_timeout_outcome(db, people, on_timeout, status):
    approval = f.create(db, people["pipeline"], timeout="1h", on_timeout=on_timeout).approval
    assert approvals.expire_due(db, SCHEDULER, now=datetime.now(UTC) + timedelta(minutes=59)) == 0
    assert approvals.expire_due(db, SCHEDULER, now=datetime.now(UTC) + timedelta(minutes=61)) == 1
    settled = approvals.get(db, f.context(db, people["pipeline"]), approval.id)
    assert settled.status is status
    assert settled.outcome == {"status": status.value, "reason": "timeout"}


def test_a_stopped_heartbeat_expires_the_approval(db, people):
    approval = f.create(db, people["pipeline"], heartbeat_timeout="10m").approval
    later = datetime.now(UTC) + timedelta(minutes=11)
    assert approvals.expire_due(db, SCHEDULER, now=later) == 1
    settled = approvals.get(db, f.context(db, people["pipeline"]), approval.id)
    assert settled.outcome == {"status": "expired", "reason": "heartbeat"}


def test_a_heartbeat_pushes_the_heartbeat_deadline(db, people):
    created = f.create(db, people["pipeline"], heartbeat_timeout="10m")
    token_ctx = Context(principal=Principal(approval_id=created.approval.id))
    beat = approvals.heartbeat(db, token_ctx, created.approval.id)
    assert beat.heartbeat_deadline_at > created.approval.heartbeat_deadline_at


def test_the_scheduler_leaves_decided_approvals_alone(db, people):
    approval = f.create(db, people["pipeline"], timeout="1h").approval
    decide(db, people["alice"], approval.id)
    assert approvals.expire_due(db, SCHEDULER, now=datetime.now(UTC) + timedelta(hours=2)) == 0


def test_cancel_by_the_token_settles_as_canceled_and_blocks_decisions(db, people):
    created = f.create(db, people["pipeline"])
    token_ctx = Context(principal=Principal(approval_id=created.approval.id))
    assert approvals.cancel(db, token_ctx, created.approval.id).status is Status.CANCELED
    with pytest.raises(errors.AlreadyDecided):
        decide(db, people["alice"], created.approval.id)
    with pytest.raises(errors.AlreadySettled):
        approvals.cancel(db, token_ctx, created.approval.id)


def test_others_cannot_cancel(db, people):
    approval = f.create(db, people["pipeline"]).approval
    with pytest.raises(errors.PermissionDenied):
        approvals.cancel(db, f.context(db, people["alice"]), approval.id)


def test_a_task_token_opens_only_its_own_approval_and_cannot_decide(db, people):
    first = f.create(db, people["pipeline"])
    second = f.create(db, people["pipeline"])
    token_ctx = Context(principal=Principal(approval_id=first.approval.id))
    assert approvals.get(db, token_ctx, first.approval.id).id == first.approval.id
    with pytest.raises(errors.ApprovalNotFound):
        approvals.get(db, token_ctx, second.approval.id)
    with pytest.raises(errors.PermissionDenied):
        approvals.decide(
            db, token_ctx, first.approval.id, schemas.DecisionCreate(verdict="approve")
        )


def test_outsiders_do_not_see_approvals(db, people):
    approval = f.create(db, people["pipeline"]).approval
    with pytest.raises(errors.ApprovalNotFound):
        approvals.get(db, f.context(db, people["carol"]), approval.id)
    assert approvals.get(db, f.context(db, people["admin"]), approval.id).id == approval.id


def test_settlement_writes_events_and_a_callback_delivery_once(db, people):
    approval = f.create(db, people["pipeline"], callback_url="http://127.0.0.1:9/hook").approval
    decide(db, people["alice"], approval.id)
    with db.read() as session:
        kinds = [event.type for event in outbox.events_of_subject(session, approval.id)]
        sent = outbox.deliveries_of_subject(session, approval.id)
    assert kinds == ["approval.created", "approval.decided", "approval.settled"]
    assert [(d["event_type"], d["target"]) for d in sent] == [
        ("approval.settled", "http://127.0.0.1:9/hook")
    ]


def test_listing_pages_newest_first_without_gaps_or_repeats(db, people):
    made = [f.create(db, people["pipeline"], labels=["nightly"]).approval.id for _ in range(7)]
    ctx = f.context(db, people["pipeline"])
    seen, cursor = [], None
    while True:
        page, cursor = approvals.list_approvals(db, ctx, cursor=cursor, limit=3)
        seen += [a.id for a in page]
        if cursor is None:
            break
    assert seen == list(reversed(made))


def test_listing_filters_by_status_label_and_what_i_can_decide(db, people):
    nightly = f.create(
        db, people["pipeline"], labels=["nightly"], approvers=["team:data-owners"]
    ).approval
    other = f.create(db, people["pipeline"], approvers=["carol@example.com"]).approval
    decided = f.create(db, people["pipeline"], approvers=["team:data-owners"]).approval
    decide(db, people["alice"], decided.id)

    def ids_of(who, **filters):
        return {a.id for a in approvals.list_approvals(db, f.context(db, who), **filters)[0]}

    assert ids_of(people["pipeline"], label="nightly") == {nightly.id}
    assert ids_of(people["pipeline"], status=Status.APPROVED) == {decided.id}
    assert ids_of(people["bob"], decidable_by_me=True) == {nightly.id}
    assert ids_of(people["alice"], decidable_by_me=True) == {nightly.id}
    assert ids_of(people["carol"]) == {other.id}
    assert ids_of(people["admin"]) == {nightly.id, other.id, decided.id}


def test_a_bad_cursor_is_invalid_input(db, people):
    with pytest.raises(errors.InvalidInput):
        approvals.list_approvals(db, f.context(db, people["pipeline"]), cursor="garbage!")
