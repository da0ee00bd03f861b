"""Policies: the pure rules (durations, settlement, named policies' names and what a request
may not change), and the named-policy service on a real database (permissions, approver
checks, audit)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import get_args

import pytest

from signoff import errors, schemas
from signoff.domain import approvals, policies
from signoff.domain.approvals import Channel, Decision, Status, Verdict
from signoff.domain.principals import Context, Principal, Role
from signoff.services import audit, principals
from signoff.services import policies as service
from signoff.store.engine import Database
from tests import factories as f


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("30m", 1800),
        ("24h", 86400),
        ("1h30m", 5400),
        ("7d", 604800),
        ("2w", 1209600),
        (3600, 3600),
        ("600", 600),
    ],
)
def test_durations_parse(text, seconds):
    assert policies.parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("seconds", "text"), [(90, "1m30s"), (5400, "1h30m"), (86400, "1d"), (1209600, "14d")]
)
def test_durations_format_as_they_parse(seconds, text):
    assert policies.format_duration(seconds) == text
    assert policies.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "h", "1y", "12 parsecs", "367d", -5, True])
def test_bad_durations_are_invalid_input(text):
    with pytest.raises(errors.InvalidInput):
        policies.parse_duration(text)


def _decision(number: int, verdict: Verdict) -> Decision:
    return Decision(
        f"d{number}",
        "ap",
        f"u{number}",
        f"u{number}@x",
        verdict,
        "",
        None,
        Channel.API,
        datetime.now(UTC),
    )


@pytest.mark.parametrize(
    ("quorum", "rejections", "verdicts", "expected"),
    [
        (1, 1, [], None),
        (1, 1, ["approve"], Status.APPROVED),
        (2, 1, ["approve"], None),
        (2, 1, ["approve", "reject"], Status.REJECTED),
        (2, 2, ["reject", "approve"], None),
        (2, 2, ["reject", "approve", "approve"], Status.APPROVED),
        (3, 2, ["reject", "reject"], Status.REJECTED),
    ],
)
def test_settlement(quorum, rejections, verdicts, expected):
    policy = policies.Policy(quorum=quorum, rejections_to_reject=rejections)
    decisions = [_decision(n, Verdict(v)) for n, v in enumerate(verdicts)]
    assert approvals.settlement(policy, decisions) is expected


def test_a_quorum_below_one_is_invalid():
    with pytest.raises(errors.InvalidInput):
        policies.Policy(quorum=0)


def _named(**overrides: object) -> policies.NamedPolicy:
    now = datetime.now(UTC)
    fields: dict[str, object] = {
        "id": "pol_1",
        "name": "prod-promotion",
        "description": "",
        "approvers": (policies.ApproverRef("team", "team_1", "model-approvers-prod"),),
        "rules": policies.Policy(quorum=2, comment_required=True, name="prod-promotion"),
        "timeout_seconds": None,
        "on_timeout": None,
        "created_at": now,
        "updated_at": now,
    }
    return policies.NamedPolicy(**(fields | overrides))  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["prod-promotion", "a", "v1.2_gate", "0day", "x" * 100])
def test_policy_names_are_lower_case_slugs(name):
    policies.check_policy_name(name)


@pytest.mark.parametrize(
    "name", ["", "Prod", "-lead", ".hidden", "has space", "x" * 101, "prod/promotion", "é", "a\n"]
)
def test_other_policy_names_are_invalid_input_naming_the_field(name):
    with pytest.raises(errors.InvalidInput) as raised:
        policies.check_policy_name(name)
    assert raised.value.extra == {"field": "name"}


def test_a_named_policy_needs_approvers_and_a_valid_name():
    with pytest.raises(errors.InvalidInput, match="approver"):
        _named(approvers=())
    with pytest.raises(errors.InvalidInput, match="slug"):
        _named(name="Prod Promotion", rules=policies.Policy(name="Prod Promotion"))


def test_a_named_policys_rules_carry_its_name():
    with pytest.raises(ValueError, match="carry the name"):
        _named(rules=policies.Policy(quorum=2))


def test_a_request_may_not_give_approvers_for_a_named_policy():
    with pytest.raises(errors.InvalidInput, match="prod-promotion") as raised:
        _named().check_request(approvers=["me@example.com"], timeout_seconds=None, on_timeout=None)
    assert raised.value.extra == {"field": "approvers"}


def test_a_request_may_repeat_but_not_change_a_fixed_timeout_and_outcome():
    fixed = _named(timeout_seconds=3600, on_timeout=policies.OnTimeout.REJECT)
    fixed.check_request(approvers=None, timeout_seconds=3600, on_timeout="reject")
    fixed.check_request(approvers=None, timeout_seconds=None, on_timeout=None)
    with pytest.raises(errors.InvalidInput, match="fixes the timeout at 1h:") as raised:
        fixed.check_request(approvers=None, timeout_seconds=7200, on_timeout=None)
    assert raised.value.extra == {"field": "timeout"}
    with pytest.raises(errors.InvalidInput) as raised:
        fixed.check_request(approvers=None, timeout_seconds=None, on_timeout="approve")
    assert raised.value.extra == {"field": "on_timeout"}


def test_what_a_named_policy_leaves_open_the_request_chooses_but_never_approval_by_silence():
    _named().check_request(approvers=None, timeout_seconds=60, on_timeout="expire")
    with pytest.raises(errors.InvalidInput, match="does not let silence approve") as raised:
        _named().check_request(approvers=None, timeout_seconds=60, on_timeout="approve")
    assert raised.value.extra == {"field": "on_timeout"}
    approving = _named(on_timeout=policies.OnTimeout.APPROVE)
    approving.check_request(approvers=None, timeout_seconds=60, on_timeout="approve")


def test_a_named_policy_as_json_spells_its_rules_out_flat():
    shown = _named(timeout_seconds=600).as_json()
    assert shown["name"] == "prod-promotion"
    assert (shown["quorum"], shown["comment_required"], shown["timeout_seconds"]) == (2, True, 600)
    assert shown["approvers"] == [{"kind": "team", "id": "team_1", "name": "model-approvers-prod"}]
    assert shown["on_timeout"] is None


def test_an_approvals_policy_says_which_named_policy_it_came_from():
    assert policies.Policy(quorum=2).as_json()["name"] is None
    assert policies.Policy(name="prod-promotion").as_json()["name"] == "prod-promotion"
    assert "name" not in policies.Policy(name="prod-promotion").rules_json()


def test_rules_stored_before_link_requires_login_existed_read_as_the_link_alone_deciding():
    stored = policies.Policy(comment_required=True).rules_json()
    assert stored.pop("link_requires_login") is False
    assert policies.Policy(**stored) == policies.Policy(comment_required=True)
    assert policies.Policy(**stored, link_requires_login=True).rules_json()["link_requires_login"]


@pytest.fixture
def people(db: Database) -> dict[str, Context]:
    """Contexts of an admin and a member, and teams ``owners`` and ``model-approvers-prod``."""
    f.team(db, "owners")
    f.team(db, "model-approvers-prod")
    admin = f.user(db, "root@example.com", role=Role.ADMIN)
    member = f.user(db, "member@example.com")
    return {"admin": f.context(db, admin), "member": f.context(db, member)}


def _spec(**fields: object) -> schemas.PolicyReplace:
    return schemas.PolicyReplace.model_validate({"approvers": ["team:owners"]} | fields)


def test_an_admin_creates_a_policy_with_resolved_approvers(db, people):
    spec = schemas.PolicyCreate(
        name="prod-promotion",
        approvers=["team:model-approvers-prod", "MEMBER@example.com"],
        quorum=2,
        comment_required=True,
        timeout="4h",
        on_timeout="expire",
    )
    made = service.create(db, people["admin"], spec)
    found = service.get(db, people["member"], "prod-promotion")
    assert found == made
    assert [(r.kind, r.name) for r in found.approvers] == [
        ("team", "model-approvers-prod"),
        ("user", "member@example.com"),
    ]
    assert (found.rules.quorum, found.rules.comment_required) == (2, True)
    assert not found.rules.requester_can_decide
    assert (found.timeout_seconds, found.on_timeout) == (4 * 3600, policies.OnTimeout.EXPIRE)


def test_members_cannot_write_policies(db, people):
    f.policy(db, "prod-promotion")
    member = people["member"]
    with pytest.raises(errors.PermissionDenied, match="admin"):
        service.create(db, member, schemas.PolicyCreate(name="mine", approvers=["team:owners"]))
    with pytest.raises(errors.PermissionDenied, match="admin"):
        service.replace(db, member, "prod-promotion", _spec(quorum=1))
    with pytest.raises(errors.PermissionDenied, match="admin"):
        service.delete(db, member, "prod-promotion")
    assert [p.name for p in service.list_policies(db, member)[0]] == ["prod-promotion"]


def test_a_key_without_approvals_read_cannot_read_policies(db, people):
    f.policy(db, "prod-promotion")
    f.user(db, "pipeline@example.com")
    created = principals.create_api_key(
        db, f.CLI, user="pipeline@example.com", scopes=["approvals:write"]
    )
    writer = Context(principals.authenticate(db, created.secret, secret_key=f.SECRET_KEY))
    with pytest.raises(errors.InsufficientScope, match="approvals:read"):
        service.get(db, writer, "prod-promotion")
    with pytest.raises(errors.InsufficientScope, match="approvals:read"):
        service.list_policies(db, writer)


def test_a_task_token_cannot_read_policies(db, people):
    f.policy(db, "prod-promotion")
    token = Context(Principal(approval_id="ap_123"))
    with pytest.raises(errors.PermissionDenied, match="task token"):
        service.get(db, token, "prod-promotion")


def test_an_admins_key_without_the_admin_scope_cannot_write_policies(db, people):
    created = principals.create_api_key(
        db, f.CLI, user="root@example.com", scopes=["approvals:read"]
    )
    narrow = Context(principals.authenticate(db, created.secret, secret_key=f.SECRET_KEY))
    with pytest.raises(errors.InsufficientScope, match="'admin'"):
        service.create(db, narrow, schemas.PolicyCreate(name="p", approvers=["team:owners"]))


def test_policy_names_are_unique(db, people):
    f.policy(db, "prod-promotion")
    with pytest.raises(errors.DuplicateName, match="prod-promotion"):
        f.policy(db, "prod-promotion", quorum=3)


def test_admins_racing_for_one_name_make_one_policy_and_the_rest_get_duplicate_name(db, people):
    start = threading.Barrier(8)

    def make(quorum: int) -> str:
        start.wait(timeout=10)
        try:
            f.policy(db, "prod-promotion", quorum=quorum)
        except errors.DuplicateName:
            return "taken"
        return "made"

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(make, range(1, 9)))
    assert sorted(outcomes) == ["made"] + ["taken"] * 7
    assert len(service.list_policies(db, people["admin"])[0]) == 1


@pytest.mark.parametrize("approver", ["team:nobody", "ghost@example.com", "group:owners"])
def test_unknown_approvers_are_refused_when_a_policy_is_written(db, people, approver):
    with pytest.raises(errors.UnknownApprover):
        f.policy(db, "prod-promotion", approvers=["team:owners", approver])
    f.policy(db, "prod-promotion")
    with pytest.raises(errors.UnknownApprover):
        service.replace(db, people["admin"], "prod-promotion", _spec(approvers=[approver]))
    assert service.get(db, people["admin"], "prod-promotion").approvers[0].name == "owners"


def test_bad_rules_and_durations_are_refused_when_a_policy_is_written(db, people):
    with pytest.raises(errors.InvalidInput, match="JSON Schema"):
        f.policy(db, "p", form={"type": "no-such-type"})
    with pytest.raises(errors.InvalidInput) as raised:
        f.policy(db, "p", timeout="soon")
    assert raised.value.extra == {"field": "timeout"}
    assert service.list_policies(db, people["admin"]) == ([], None)


def test_the_service_checks_the_name_whoever_calls_it(db, people):
    # schemas.PolicyCreate checks the pattern too; a caller that built the model without
    # validation must not get past the domain's rule
    spec = schemas.PolicyCreate.model_construct(name="Not A Slug", approvers=["team:owners"])
    with pytest.raises(errors.InvalidInput, match="slug"):
        service.create(db, people["admin"], spec)


def test_replace_sets_everything_anew_and_keeps_the_id_and_creation_time(db, people):
    made = f.policy(db, "prod-promotion", quorum=2, comment_required=True, description="old")
    replaced = service.replace(
        db, people["admin"], "prod-promotion", _spec(approvers=["team:model-approvers-prod"])
    )
    assert (replaced.id, replaced.name, replaced.created_at) == (
        made.id,
        made.name,
        made.created_at,
    )
    assert replaced.updated_at > made.updated_at
    assert (replaced.rules.quorum, replaced.rules.comment_required) == (1, False)
    assert replaced.description == ""
    assert [r.name for r in replaced.approvers] == ["model-approvers-prod"]
    assert service.get(db, people["member"], "prod-promotion") == replaced


def test_missing_policies_are_policy_not_found(db, people):
    admin = people["admin"]
    with pytest.raises(errors.PolicyNotFound, match="nope"):
        service.get(db, admin, "nope")
    with pytest.raises(errors.PolicyNotFound):
        service.replace(db, admin, "nope", _spec())
    with pytest.raises(errors.PolicyNotFound):
        service.delete(db, admin, "nope")


def test_delete_removes_the_policy_and_frees_its_name(db, people):
    f.policy(db, "prod-promotion")
    service.delete(db, people["admin"], "prod-promotion")
    with pytest.raises(errors.PolicyNotFound):
        service.get(db, people["admin"], "prod-promotion")
    assert f.policy(db, "prod-promotion").name == "prod-promotion"


def test_every_write_is_audited_with_what_the_policy_held(db, people):
    made = f.policy(db, "prod-promotion", quorum=2)
    service.replace(db, people["admin"], "prod-promotion", _spec(quorum=3))
    service.delete(db, people["admin"], "prod-promotion")
    entries, _ = audit.list_entries(db, f.CLI, audit.Filters(object_id=made.id))
    by_action = {entry.action: entry for entry in entries}
    assert set(by_action) == {"policy.create", "policy.update", "policy.delete"}
    assert by_action["policy.create"].after["quorum"] == 2
    assert by_action["policy.create"].actor == "system:cli"
    update = by_action["policy.update"]
    assert (update.before["quorum"], update.after["quorum"]) == (2, 3)
    assert update.actor.startswith("user:")
    assert update.after["approvers"] == [
        {"kind": "team", "id": made.approvers[0].id, "name": "owners"}
    ]
    assert (by_action["policy.delete"].before["quorum"], by_action["policy.delete"].after) == (
        3,
        None,
    )
    assert audit.verify(db, f.CLI)[1] is None


def test_a_refused_write_leaves_no_trace(db, people):
    count_before = audit.verify(db, f.CLI)[0]
    with pytest.raises(errors.UnknownApprover):
        f.policy(db, "prod-promotion", approvers=["team:nobody"])
    assert audit.verify(db, f.CLI)[0] == count_before
    assert service.list_policies(db, people["admin"]) == ([], None)


def test_listing_pages_in_name_order(db, people):
    for name in ("c-gate", "a-gate", "b-gate", "d-gate", "e-gate"):
        f.policy(db, name)
    seen, cursor = [], None
    while True:
        page, cursor = service.list_policies(db, people["member"], cursor=cursor, limit=2)
        seen += [p.name for p in page]
        if cursor is None:
            break
    assert seen == ["a-gate", "b-gate", "c-gate", "d-gate", "e-gate"]


def test_the_wire_checks_policy_names_as_the_domain_does():
    # schemas.py is the SDK's and cannot import the domain; this keeps the two rules one.
    (constraint,) = get_args(schemas.PolicyName)[1:]
    assert constraint.pattern == f"^{policies.NAME_PATTERN}$"


def test_a_policy_on_the_wire_spells_out_every_rule():
    rules = set(schemas.PolicySpec.model_fields)
    assert rules <= set(schemas.PolicyPublic.model_fields)
    assert rules <= set(schemas.PolicyCreate.model_fields)
    assert rules | {"name"} == set(schemas.ApprovalPolicy.model_fields)
