"""Pure policy rules: durations and settlement."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from signoff import errors
from signoff.domain import approvals, policies
from signoff.domain.approvals import Channel, Decision, Status, Verdict


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
    with pytest.raises(errors.InvalidInput) as raised:
        fixed.check_request(approvers=None, timeout_seconds=7200, on_timeout=None)
    assert raised.value.extra == {"field": "timeout"}
    with pytest.raises(errors.InvalidInput) as raised:
        fixed.check_request(approvers=None, timeout_seconds=None, on_timeout="approve")
    assert raised.value.extra == {"field": "on_timeout"}


def test_what_a_named_policy_leaves_open_the_request_chooses():
    _named().check_request(approvers=None, timeout_seconds=60, on_timeout="approve")


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
