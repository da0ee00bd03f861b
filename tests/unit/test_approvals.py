"""Approval services on a real database: policy rules, named policies, idempotency, deadlines,
listing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event

from signoff import errors, schemas
from signoff.domain import approvals as domain
from signoff.domain import ids
from signoff.domain.approvals import Status
from signoff.domain.principals import Context, Principal, Role, UserKind, system_context
from signoff.services import approval_settlement, approvals, policies, principals
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
    return approval_settlement.decide(db, f.context(db, who), approval_id, spec)  # type: ignore[arg-type]


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


def test_settled_by_names_whoever_settled_it_by_name_where_known(db, people):
    approval = f.create(
        db,
        people["pipeline"],
        approvers=["team:data-owners", "carol@example.com"],
        policy={"quorum": 3, "rejections_to_reject": 2},
    ).approval
    decide(db, people["alice"], approval.id)
    assert domain.settled_by(decide(db, people["bob"], approval.id), {}) is None
    settled = decide(db, people["carol"], approval.id)
    bob = people["bob"]
    assert domain.settled_by(settled, {bob.id: bob}) == (
        f"alice@example.com, {bob.name} and carol@example.com"
    )
    rejected = f.create(db, people["pipeline"], approvers=["team:data-owners"]).approval
    assert domain.settled_by(decide(db, bob, rejected.id, "reject"), {}) == "bob@example.com"


def test_settled_by_says_what_settled_it_without_a_decision(db, people):
    timed_out = f.create(db, people["pipeline"], timeout="1h").approval
    approval_settlement.expire_due(db, SCHEDULER, now=datetime.now(UTC) + timedelta(hours=2))
    canceled = f.create(db, people["pipeline"]).approval
    approval_settlement.cancel(db, f.context(db, people["pipeline"]), canceled.id)
    pipeline = f.context(db, people["pipeline"])
    assert [
        domain.settled_by(approvals.get(db, pipeline, shown.id), {})
        for shown in (timed_out, canceled)
    ] == ["the deadline passing", "its cancellation"]


@pytest.mark.parametrize(
    ("on_timeout", "status"),
    [("reject", Status.REJECTED), ("approve", Status.APPROVED), ("expire", Status.EXPIRED)],
)
def test_the_deadline_applies_the_on_timeout_outcome(db, people, on_timeout, status):
    approval = f.create(db, people["pipeline"], timeout="1h", on_timeout=on_timeout).approval
    assert (
        approval_settlement.expire_due(db, SCHEDULER, now=datetime.now(UTC) + timedelta(minutes=59))
        == 0
    )
    assert (
        approval_settlement.expire_due(db, SCHEDULER, now=datetime.now(UTC) + timedelta(minutes=61))
        == 1
    )
    settled = approvals.get(db, f.context(db, people["pipeline"]), approval.id)
    assert settled.status is status
    assert settled.outcome == {"status": status.value, "reason": "timeout"}


def test_a_stopped_heartbeat_expires_the_approval(db, people):
    approval = f.create(db, people["pipeline"], heartbeat_timeout="10m").approval
    later = datetime.now(UTC) + timedelta(minutes=11)
    assert approval_settlement.expire_due(db, SCHEDULER, now=later) == 1
    settled = approvals.get(db, f.context(db, people["pipeline"]), approval.id)
    assert settled.outcome == {"status": "expired", "reason": "heartbeat"}


def test_a_heartbeat_pushes_the_heartbeat_deadline(db, people):
    created = f.create(db, people["pipeline"], heartbeat_timeout="10m")
    token_ctx = Context(principal=Principal(approval_id=created.approval.id))
    beat = approval_settlement.heartbeat(db, token_ctx, created.approval.id)
    assert beat.heartbeat_deadline_at > created.approval.heartbeat_deadline_at


def test_the_scheduler_leaves_decided_approvals_alone(db, people):
    approval = f.create(db, people["pipeline"], timeout="1h").approval
    decide(db, people["alice"], approval.id)
    assert (
        approval_settlement.expire_due(db, SCHEDULER, now=datetime.now(UTC) + timedelta(hours=2))
        == 0
    )


def test_cancel_by_the_token_settles_as_canceled_and_blocks_decisions(db, people):
    created = f.create(db, people["pipeline"])
    token_ctx = Context(principal=Principal(approval_id=created.approval.id))
    assert approval_settlement.cancel(db, token_ctx, created.approval.id).status is Status.CANCELED
    with pytest.raises(errors.AlreadyDecided):
        decide(db, people["alice"], created.approval.id)
    with pytest.raises(errors.AlreadySettled):
        approval_settlement.cancel(db, token_ctx, created.approval.id)


def test_others_cannot_cancel(db, people):
    approval = f.create(db, people["pipeline"]).approval
    with pytest.raises(errors.PermissionDenied):
        approval_settlement.cancel(db, f.context(db, people["alice"]), approval.id)


def test_a_task_token_opens_only_its_own_approval_and_cannot_decide(db, people):
    first = f.create(db, people["pipeline"])
    second = f.create(db, people["pipeline"])
    token_ctx = Context(principal=Principal(approval_id=first.approval.id))
    assert approvals.get(db, token_ctx, first.approval.id).id == first.approval.id
    with pytest.raises(errors.ApprovalNotFound):
        approvals.get(db, token_ctx, second.approval.id)
    with pytest.raises(errors.PermissionDenied):
        approval_settlement.decide(
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
    assert [(d.event_type, d.target) for d in sent] == [
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


@pytest.fixture
def prod_promotion(db, people):
    """Two approvals from the team, the requester excluded, a comment required."""
    return f.policy(
        db, "prod-promotion", approvers=["team:data-owners"], quorum=2, comment_required=True
    )


def test_an_approval_made_from_a_named_policy_takes_its_approvers_and_rules(
    db, people, prod_promotion
):
    approval = f.create(db, people["alice"], approvers=None, policy="prod-promotion").approval
    assert [(r.kind, r.name) for r in approval.approvers] == [("team", "data-owners")]
    assert approval.policy.name == "prod-promotion"
    assert (approval.policy.quorum, approval.policy.comment_required) == (2, True)
    with pytest.raises(errors.RequesterCannotDecide):
        decide(db, people["alice"], approval.id, comment="mine")
    with pytest.raises(errors.CommentRequired):
        decide(db, people["bob"], approval.id)
    with pytest.raises(errors.ApprovalNotFound):  # carol is in no approving team
        decide(db, people["carol"], approval.id, comment="me too")
    assert decide(db, people["bob"], approval.id, comment="ok").status is Status.PENDING
    stored = approvals.get(db, f.context(db, people["admin"]), approval.id)
    assert stored.policy == approval.policy


def test_a_later_edit_or_deletion_of_the_policy_changes_no_open_approval(
    db, people, prod_promotion
):
    approval = f.create(db, people["pipeline"], approvers=None, policy="prod-promotion").approval
    looser = schemas.PolicyReplace(approvers=["carol@example.com"], quorum=1)
    policies.replace(db, f.CLI, "prod-promotion", looser)
    kept = approvals.get(db, f.context(db, people["admin"]), approval.id)
    assert (kept.policy, kept.approvers) == (approval.policy, approval.approvers)
    with pytest.raises(errors.ApprovalNotFound):
        decide(db, people["carol"], approval.id, comment="the new policy says I may")
    assert decide(db, people["alice"], approval.id, comment="one").status is Status.PENDING
    policies.delete(db, f.CLI, "prod-promotion")
    assert decide(db, people["bob"], approval.id, comment="two").status is Status.APPROVED
    with pytest.raises(errors.UnknownPolicy):
        f.create(db, people["pipeline"], approvers=None, policy="prod-promotion")


def test_an_unknown_policy_name_is_unknown_policy_naming_it(db, people):
    with pytest.raises(errors.UnknownPolicy, match="'prod-promotion'") as raised:
        f.create(db, people["pipeline"], approvers=None, policy="prod-promotion")
    assert raised.value.extra == {"policy": "prod-promotion"}
    assert isinstance(raised.value, errors.InvalidInput)


def test_approvers_cannot_be_given_with_a_named_policy(db, people, prod_promotion):
    for approvers in (["carol@example.com"], ["team:data-owners"]):
        with pytest.raises(errors.InvalidInput, match="leave approvers out") as raised:
            f.create(db, people["pipeline"], approvers=approvers, policy="prod-promotion")
        assert raised.value.extra == {"field": "approvers"}


def test_without_a_named_policy_approvers_are_required(db, people):
    with pytest.raises(errors.InvalidInput) as raised:
        f.create(db, people["pipeline"], approvers=None)
    assert raised.value.extra == {"field": "approvers"}


def test_a_named_policy_fixes_the_timeout_and_its_outcome(db, people):
    f.policy(db, "quick", approvers=["alice@example.com"], timeout="1h", on_timeout="expire")
    approval = f.create(db, people["pipeline"], approvers=None, policy="quick").approval
    assert approval.deadline_at - approval.created_at == timedelta(hours=1)
    assert approval.on_timeout.value == "expire"
    same = f.create(
        db, people["pipeline"], approvers=None, policy="quick", timeout=3600, on_timeout="expire"
    )
    assert same.approval.deadline_at - same.approval.created_at == timedelta(hours=1)
    for change, field in (
        ({"timeout": "7d"}, "timeout"),
        ({"on_timeout": "approve"}, "on_timeout"),
    ):
        with pytest.raises(errors.InvalidInput, match="'quick' fixes") as raised:
            f.create(db, people["pipeline"], approvers=None, policy="quick", **change)
        assert raised.value.extra == {"field": field}


def test_what_a_named_policy_leaves_open_the_request_chooses(db, people, prod_promotion):
    default = f.create(db, people["pipeline"], approvers=None, policy="prod-promotion").approval
    assert default.deadline_at - default.created_at == timedelta(hours=24)
    assert default.on_timeout.value == "reject"
    chosen = f.create(
        db,
        people["pipeline"],
        approvers=None,
        policy="prod-promotion",
        timeout="2h",
        on_timeout="expire",
        heartbeat_timeout="5m",
    ).approval
    assert chosen.deadline_at - chosen.created_at == timedelta(hours=2)
    assert (chosen.on_timeout.value, chosen.heartbeat_timeout_seconds) == ("expire", 300)


def test_a_request_cannot_make_silence_approve_under_a_named_policy(db, people, prod_promotion):
    with pytest.raises(errors.InvalidInput, match="does not let silence approve"):
        f.create(
            db, people["pipeline"], approvers=None, policy="prod-promotion", on_timeout="approve"
        )


def test_an_inline_policy_has_no_name(db, people):
    assert f.create(db, people["pipeline"]).approval.policy.name is None


def test_idempotency_tells_a_policy_name_from_inline_rules(db, people, prod_promotion):
    ctx = f.context(db, people["pipeline"])
    named = f.approval_spec(approvers=None, policy="prod-promotion")
    first = approvals.create(db, ctx, named, secret_key=f.SECRET_KEY, idempotency_key="k")
    inline = f.approval_spec(approvers=["team:data-owners"], policy={"quorum": 2})
    with pytest.raises(errors.IdempotencyConflict):
        approvals.create(db, ctx, inline, secret_key=f.SECRET_KEY, idempotency_key="k")
    explicit = f.approval_spec(approvers=None, policy="prod-promotion", timeout="24h")
    with pytest.raises(errors.IdempotencyConflict):  # with a name, a given timeout means more
        approvals.create(db, ctx, explicit, secret_key=f.SECRET_KEY, idempotency_key="k")
    policies.delete(db, f.CLI, "prod-promotion")
    again = approvals.create(db, ctx, named, secret_key=f.SECRET_KEY, idempotency_key="k")
    assert (again.approval.id, again.replayed) == (first.approval.id, True)


def test_inline_requests_hash_as_before_named_policies(db, people):
    # Stored Idempotency-Key hashes must keep matching: these are the digests the requests
    # had when timeout and on_timeout could not be omitted.
    assert approvals._request_hash(f.approval_spec()) == (
        "9b04db023064e46edd41c8c7cc8dbe6dfe844317fad36c451872fc95afd997fe"
    )
    spelled_out = f.approval_spec(timeout="24h", on_timeout="reject", policy={"quorum": 2})
    assert approvals._request_hash(spelled_out) == (
        "d6c26e6b3cae0e0423208ef57dd6404ec1e08afe3673953747ab5868694d273e"
    )
    needs_login = f.approval_spec(policy={"link_requires_login": True})
    assert approvals._request_hash(needs_login) != approvals._request_hash(f.approval_spec())


def test_creating_from_a_named_policy_reads_it_once_and_looks_up_no_approver(
    db, people, prod_promotion
):
    statements: list[str] = []

    def capture(_conn: object, _cursor: object, sql: str, *_: object) -> None:
        statements.append(sql)

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        f.create(db, people["pipeline"], approvers=None, policy="prod-promotion")
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)
    reads = [sql for sql in statements if sql.lstrip().upper().startswith("SELECT")]
    assert sum("FROM policies" in sql for sql in reads) == 1, reads
    assert not [sql for sql in reads if "FROM users" in sql or "FROM teams" in sql], reads


def emailed_by(db: Database, requester: object, **overrides: object) -> list[str]:
    """Create an approval with SMTP configured; whom its deliveries go to, checked against
    whom its ``approval.created`` event names."""
    created = approvals.create(
        db,
        f.context(db, requester),  # type: ignore[arg-type]
        f.approval_spec(**overrides),
        secret_key=f.SECRET_KEY,
        email_approvers=True,
    )
    with db.read() as session:
        [event] = outbox.events_of_subject(session, created.approval.id)
        sent = outbox.deliveries_of_subject(session, created.approval.id)
    assert {(d.event_type, d.target_kind) for d in sent} <= {("approval.created", "email")}
    targets = [d.target for d in sent]
    assert sorted(targets) == [person["email"] for person in event.data["emailed"]]
    return sorted(targets)


def test_creating_emails_named_users_and_the_members_of_named_teams_once_each(db, people):
    f.team(db, "reviewers", "alice@example.com", "carol@example.com")
    approvers = ["alice@example.com", "team:data-owners", "team:reviewers"]
    assert emailed_by(db, people["pipeline"], approvers=approvers) == [
        "alice@example.com",
        "bob@example.com",
        "carol@example.com",
    ]


def test_service_accounts_and_disabled_people_are_not_emailed(db, people):
    principals.create_user(db, f.CLI, email="etl@example.com", kind=UserKind.SERVICE)
    principals.add_member(db, f.CLI, team="data-owners", user="etl@example.com")
    principals.update_user(db, f.CLI, "bob@example.com", is_active=False)
    approvers = ["team:data-owners", "etl@example.com", "bob@example.com"]
    assert emailed_by(db, people["pipeline"], approvers=approvers) == ["alice@example.com"]


def test_the_requester_is_emailed_only_when_the_policy_lets_them_decide(db, people):
    approvers = ["team:data-owners"]
    assert emailed_by(db, people["alice"], approvers=approvers) == ["bob@example.com"]
    own = {"requester_can_decide": True}
    assert emailed_by(db, people["alice"], approvers=approvers, policy=own) == [
        "alice@example.com",
        "bob@example.com",
    ]


def test_an_approval_made_from_a_named_policy_emails_its_teams_members_as_they_are_now(
    db, people, prod_promotion
):
    f.user(db, "dave@example.com", teams=("data-owners",))
    assert emailed_by(db, people["pipeline"], approvers=None, policy="prod-promotion") == [
        "alice@example.com",
        "bob@example.com",
        "dave@example.com",
    ]


def test_without_smtp_nobody_is_emailed_and_the_event_says_so(db, people):
    approval = f.create(db, people["pipeline"], approvers=["team:data-owners"]).approval
    with db.read() as session:
        [event] = outbox.events_of_subject(session, approval.id)
        assert outbox.deliveries_of_subject(session, approval.id) == []
    assert event.data["emailed"] == []


def test_whom_to_email_costs_one_query_whatever_the_number_of_teams(db, people):
    for name in ("a", "b", "c"):
        f.team(db, name, "carol@example.com")
    statements: list[str] = []

    def capture(_conn: object, _cursor: object, sql: str, *_: object) -> None:
        statements.append(sql)

    approvers = ["alice@example.com", "team:data-owners", "team:a", "team:b", "team:c"]
    spec = f.approval_spec(approvers=approvers)
    ctx = f.context(db, people["pipeline"])
    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        approvals.create(db, ctx, spec, secret_key=f.SECRET_KEY, email_approvers=True)
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)
    members = [sql for sql in statements if "FROM team_members" in sql]
    assert len(members) == 1, members
    assert sum("INSERT INTO deliveries" in sql for sql in statements) == 1, statements
