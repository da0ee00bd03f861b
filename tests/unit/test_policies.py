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
