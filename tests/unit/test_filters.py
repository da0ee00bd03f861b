"""Event filters in EventBridge's content-filter style: every operator, arrays in events,
nesting, and the refusals of malformed patterns (each naming the path of the mistake).

The EC2 event and the patterns marked ``eventbridge`` are the examples of Amazon
EventBridge's documentation on event patterns; the others use signoff's own envelopes."""

from __future__ import annotations

import pytest

from signoff import errors
from signoff.domain import filters

EC2 = {
    "version": "0",
    "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
    "detail-type": "EC2 Instance State-change Notification",
    "source": "aws.ec2",
    "account": "111122223333",
    "time": "2017-12-22T18:43:48Z",
    "region": "us-west-1",
    "resources": ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"],
    "detail": {"instance-id": "i-1234567890abcdef0", "state": "terminated"},
}
COUNTS = {"detail": {"c-count": 5, "d-count": 3, "x-limit": 301.8}}
NULLS = {"detail": {"eventVersion": "", "responseElements": None}}
SETTLED = {
    "id": "evt_01",
    "type": "approval.settled",
    "version": 1,
    "timestamp": "2026-11-22T06:09:33.224519+00:00",
    "subject": "ap_xvrhmtfm6gt1",
    "actor": "user:usr_rkryhwaf146v",
    "data": {
        "title": "Apply batch 42?",
        "status": "rejected",
        "previous_status": "pending",
        "labels": ["nightly", "prod-eu"],
        "context": {"customer": 42, "flagged_ratio": 0.064, "dry_run": False, "owner": None},
        "decisions": [
            {"user": "dana@example.com", "verdict": "approve"},
            {"user": "eve@example.com", "verdict": "reject"},
        ],
        "outcome": {"status": "rejected", "reason": "decision"},
    },
}

MATCHES = [
    # (event, pattern, matches?)
    pytest.param(EC2, {"source": ["aws.ec2"]}, True, id="eventbridge: exact value"),
    pytest.param(
        EC2,
        {"source": ["aws.ec2"], "detail": {"state": ["terminated"]}},
        True,
        id="eventbridge: nested field, all keys",
    ),
    pytest.param(
        EC2,
        {"source": ["aws.ec2"], "detail": {"state": ["running"]}},
        False,
        id="eventbridge: one key fails, the pattern fails",
    ),
    pytest.param(EC2, {"detail": {"state": ["pending", "terminated"]}}, True, id="eventbridge: OR"),
    pytest.param(EC2, {"time": [{"prefix": "2017-12-22"}]}, True, id="eventbridge: prefix"),
    pytest.param(
        EC2, {"detail": {"instance-id": [{"suffix": "cdef0"}]}}, True, id="eventbridge: suffix"
    ),
    pytest.param(
        EC2,
        {"detail-type": [{"equals-ignore-case": "ec2 instance state-change notification"}]},
        True,
        id="eventbridge: equals-ignore-case",
    ),
    pytest.param(
        EC2,
        {"detail": {"state": [{"anything-but": "initializing"}]}},
        True,
        id="eventbridge: anything-but a value",
    ),
    pytest.param(
        EC2,
        {"detail": {"state": [{"anything-but": ["stopped", "terminated"]}]}},
        False,
        id="eventbridge: anything-but a list",
    ),
    pytest.param(
        EC2,
        {"detail": {"state": [{"anything-but": {"prefix": "init"}}]}},
        True,
        id="eventbridge: anything-but a prefix",
    ),
    pytest.param(
        EC2,
        {"detail": {"state": [{"anything-but": {"prefix": "term"}}]}},
        False,
        id="anything-but a prefix that is there",
    ),
    pytest.param(
        EC2, {"detail": {"state": [{"exists": True}]}}, True, id="eventbridge: exists true"
    ),
    pytest.param(
        EC2, {"detail": {"c-count": [{"exists": False}]}}, True, id="eventbridge: exists false"
    ),
    pytest.param(
        EC2, {"detail": {"state": [{"exists": False}]}}, False, id="exists false, but it does"
    ),
    pytest.param(
        EC2,
        {
            "resources": [
                "arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0",
                "arn:aws:ec2:us-east-1:111122223333:instance/i-b188560f",
            ]
        },
        True,
        id="eventbridge: an array in the event matches if any element does",
    ),
    pytest.param(
        COUNTS,
        {
            "detail": {
                "c-count": [{"numeric": [">", 0, "<=", 5]}],
                "d-count": [{"numeric": ["<", 10]}],
                "x-limit": [{"numeric": ["=", 3.018e2]}],
            }
        },
        True,
        id="eventbridge: numeric ranges and equality",
    ),
    pytest.param(
        COUNTS, {"detail": {"c-count": [{"numeric": [">", 5]}]}}, False, id="numeric: bound"
    ),
    pytest.param(
        COUNTS, {"detail": {"c-count": [{"numeric": [">=", 5]}]}}, True, id="numeric: inclusive"
    ),
    pytest.param(
        NULLS, {"detail": {"responseElements": [None]}}, True, id="eventbridge: null matches null"
    ),
    pytest.param(NULLS, {"detail": {"eventVersion": [""]}}, True, id="eventbridge: empty string"),
    pytest.param(NULLS, {"detail": {"absent": [None]}}, False, id="null is not missing"),
    pytest.param(
        NULLS,
        {"detail": {"responseElements": [{"anything-but": "x"}]}},
        True,
        id="null is anything but a string",
    ),
    pytest.param(NULLS, {"detail": {"absent": [{"anything-but": "x"}]}}, False, id="but-absent"),
    # signoff's envelopes
    pytest.param(SETTLED, {}, True, id="the empty pattern matches everything"),
    pytest.param(SETTLED, {"type": ["approval.settled"]}, True, id="by type"),
    pytest.param(SETTLED, {"type": [{"prefix": "approval."}]}, True, id="by type prefix"),
    pytest.param(SETTLED, {"version": [1]}, True, id="numbers match exactly"),
    pytest.param(SETTLED, {"version": [1.0]}, True, id="1 and 1.0 are one number"),
    pytest.param(SETTLED, {"version": ["1"]}, False, id="a string is not a number"),
    pytest.param(SETTLED, {"data": {"context": {"dry_run": [False]}}}, True, id="boolean"),
    pytest.param(SETTLED, {"data": {"context": {"dry_run": [0]}}}, False, id="false is not 0"),
    pytest.param(SETTLED, {"data": {"context": {"customer": [True]}}}, False, id="1 is not true"),
    pytest.param(SETTLED, {"data": {"context": {"owner": [None]}}}, True, id="nested null"),
    pytest.param(SETTLED, {"data": {"labels": ["prod-eu"]}}, True, id="any label"),
    pytest.param(SETTLED, {"data": {"labels": [{"prefix": "prod-"}]}}, True, id="label prefix"),
    pytest.param(
        SETTLED, {"data": {"labels": [{"anything-but": "nightly"}]}}, True, id="any-but: any"
    ),
    pytest.param(
        SETTLED,
        {"data": {"labels": [{"anything-but": ["nightly", "prod-eu"]}]}},
        False,
        id="anything-but every element",
    ),
    pytest.param(
        SETTLED,
        {"data": {"decisions": {"user": ["eve@example.com"], "verdict": ["reject"]}}},
        True,
        id="nested pattern over a list of objects: one element matches whole",
    ),
    pytest.param(
        SETTLED,
        {"data": {"decisions": {"user": ["eve@example.com"], "verdict": ["approve"]}}},
        False,
        id="the fields of two elements do not combine",
    ),
    pytest.param(
        SETTLED,
        {"data": {"context": {"flagged_ratio": [{"numeric": [">", 0.05, "<", 0.1]}]}}},
        True,
        id="a ratio in a range",
    ),
    pytest.param(
        SETTLED, {"data": {"status": [{"numeric": [">", 0]}]}}, False, id="numeric on a string"
    ),
    pytest.param(
        SETTLED, {"data": {"context": {"customer": [{"prefix": "4"}]}}}, False, id="prefix: str"
    ),
    pytest.param(SETTLED, {"data": [{"exists": True}]}, False, id="an object is not a value"),
    pytest.param(
        SETTLED, {"data": {"missing": {"deeper": [{"exists": False}]}}}, True, id="deep absent"
    ),
    pytest.param(
        SETTLED, {"data": {"missing": {"deeper": ["x"]}}}, False, id="deep under a missing parent"
    ),
    pytest.param(SETTLED, {"data": {"title": {"x": ["y"]}}}, False, id="object over a string"),
    pytest.param(
        SETTLED,
        {"data": {"outcome": {"status": [{"equals-ignore-case": "REJECTED"}]}}},
        True,
        id="deep equals-ignore-case",
    ),
]


@pytest.mark.parametrize(("event", "pattern", "expected"), MATCHES)
def test_a_pattern_matches_as_eventbridge_would(event, pattern, expected):
    filters.check(pattern)
    assert filters.matches(pattern, event) is expected


REFUSALS = [
    # (pattern, the message names)
    pytest.param([], "filter: a filter is an object", id="not an object"),
    pytest.param({"type": "approval.settled"}, "filter.type: write a list", id="bare value"),
    pytest.param({"type": []}, "filter.type: an empty list matches nothing", id="empty list"),
    pytest.param({"data": {}}, "filter.data: an empty object", id="empty object"),
    pytest.param({"type": [["a"]]}, "filter.type[0]: lists do not nest", id="nested list"),
    pytest.param(
        {"data": {"status": [{"prefx": "a"}]}},
        "filter.data.status[0]: an operator is one of prefix",
        id="unknown operator",
    ),
    pytest.param(
        {"type": [{"prefix": "a", "suffix": "b"}]},
        "filter.type[0]: an operator is one of",
        id="two operators in one",
    ),
    pytest.param({"type": [{"prefix": 1}]}, "filter.type[0].prefix: prefix takes a string", id="p"),
    pytest.param(
        {"a": [{"exists": "yes"}]}, "filter.a[0].exists: exists takes true or false", id="e"
    ),
    pytest.param({"a": [{"numeric": [">"]}]}, "filter.a[0].numeric: numeric takes", id="short"),
    pytest.param({"a": [{"numeric": ["~", 1]}]}, "the operators are", id="bad comparison"),
    pytest.param({"a": [{"numeric": [">", "1"]}]}, "the limits are finite numbers", id="str"),
    pytest.param({"a": [{"numeric": [">", True]}]}, "the limits are finite numbers", id="bool"),
    pytest.param({"a": [{"numeric": [">", float("inf")]}]}, "finite numbers", id="infinite"),
    pytest.param(
        {"a": [{"numeric": [">", 1, ">", 2]}]}, "one is > or >= and the other", id="two lowers"
    ),
    pytest.param({"a": [{"numeric": ["=", 1, "<", 2]}]}, "one is > or >=", id="= with a bound"),
    pytest.param({"a": [{"numeric": [">", 5, "<", 1]}]}, "holds no number", id="empty range"),
    pytest.param({"a": [{"anything-but": []}]}, "a non-empty list", id="anything-but []"),
    pytest.param(
        {"a": [{"anything-but": [None]}]}, "filter.a[0].anything-but[0]: anything-but lists", id="n"
    ),
    pytest.param(
        {"a": [{"anything-but": {"exists": True}}]}, "anything-but takes one of prefix", id="op"
    ),
    pytest.param({"a": [{"anything-but": True}]}, "anything-but takes a string", id="bool but"),
    pytest.param({"a": [float("nan")]}, "filter.a[0]: numbers must be finite", id="nan"),
    pytest.param({"a": ["x"] * 101}, "at most 100 alternatives", id="too many"),
    pytest.param({"a": ["x" * 9000]}, "at most 8192 bytes", id="too large"),
]


@pytest.mark.parametrize(("pattern", "says"), REFUSALS)
def test_a_malformed_pattern_is_refused_naming_the_path(pattern, says):
    with pytest.raises(errors.InvalidInput) as refused:
        filters.check(pattern)
    assert says in refused.value.detail
    assert refused.value.detail.startswith(refused.value.extra["field"] + ":")


def test_nesting_is_bounded():
    pattern: dict[str, object] = {"leaf": ["x"]}
    for _ in range(filters.MAX_DEPTH):
        pattern = {"a": pattern}
    with pytest.raises(errors.InvalidInput, match="nests at most 10 objects deep"):
        filters.check(pattern)


def test_patterns_name_fields_that_look_like_operators_without_confusion():
    event = {"data": {"prefix": {"exists": "yes"}}}
    pattern = {"data": {"prefix": {"exists": ["yes"]}}}
    filters.check(pattern)
    assert filters.matches(pattern, event)
