"""A decision as a page reads it: the policy's JSON Schema form as HTML fields, and posted
text back into typed form data with one message per field to fix."""

from __future__ import annotations

from signoff.domain import forms, policies
from signoff.domain.approvals import Verdict

SCHEMA = {
    "type": "object",
    "required": ["ticket", "rows", "risk"],
    "properties": {
        "ticket": {"type": "string", "pattern": "^CHG-[0-9]+$", "title": "Change ticket"},
        "rows": {"type": "integer", "minimum": 1, "description": "Rows to apply."},
        "ratio": {"type": ["number", "null"], "maximum": 1},
        "risk": {"enum": ["low", "high", 3]},
        "dry_run": {"type": "boolean"},
        "tables": {"type": "array", "items": {"type": "string"}},
    },
}
POLICY = policies.Policy(form=SCHEMA, comment_required=True)


def read(verdict: Verdict = Verdict.APPROVE, comment: str = "ok", **posted: str) -> forms.Posted:
    fields = {forms.FIELD_PREFIX + name: value for name, value in posted.items()}
    return forms.read(POLICY, verdict, comment, fields)


def test_each_property_becomes_a_field_of_its_kind_required_ones_first():
    fields = forms.fields_of(SCHEMA)
    assert [(f.name, f.kind, f.required) for f in fields] == [
        ("ticket", "text", True),
        ("rows", "integer", True),
        ("risk", "choice", True),
        ("dry_run", "boolean", False),
        ("ratio", "number", False),
        ("tables", "json", False),
    ]
    assert (fields[0].label, fields[1].label, fields[1].help) == (
        "Change ticket",
        "Rows",
        "Rows to apply.",
    )
    assert (fields[1].minimum, fields[4].maximum) == (1, 1)
    assert [shown for shown, _ in fields[2].choices] == ["low", "high", "3"]
    assert forms.fields_of(None) == []


def test_the_order_of_fields_does_not_depend_on_the_order_of_properties():
    """PostgreSQL's JSONB keeps object keys in its own order, so the page must not use it."""
    shuffled = SCHEMA | {"properties": dict(reversed(SCHEMA["properties"].items()))}
    assert forms.fields_of(shuffled) == forms.fields_of(SCHEMA)


def test_posted_text_becomes_typed_form_data():
    posted = read(
        ticket=" CHG-42 ",
        rows="120",
        ratio="0.5",
        risk="3",
        dry_run="on",
        tables='["orders"]',
    )
    assert posted.errors == {}
    assert posted.form == {
        "ticket": "CHG-42",
        "rows": 120,
        "ratio": 0.5,
        "risk": 3,
        "dry_run": True,
        "tables": ["orders"],
    }


def test_empty_optional_fields_are_left_out_and_an_unticked_box_is_false():
    posted = read(ticket="CHG-1", rows="1", risk="low")
    assert posted.form == {"ticket": "CHG-1", "rows": 1, "risk": "low", "dry_run": False}


def test_every_problem_is_reported_against_its_own_field():
    posted = read(comment=" ", ticket="JIRA-1", rows="3.5", ratio="2", risk="medium", tables="[")
    assert set(posted.errors) == {"comment", "ticket", "rows", "ratio", "risk", "tables"}
    assert posted.errors["comment"] == "a comment is required"
    assert "does not match" in posted.errors["ticket"]
    assert posted.errors["rows"] == "enter a whole number"
    assert "greater than the maximum of 1" in posted.errors["ratio"]
    assert posted.errors["risk"] == "choose one of the listed values"
    assert posted.errors["tables"].startswith("this field takes JSON")


def test_a_required_field_left_empty_says_so_once():
    posted = read(ticket="", rows="", risk="low")
    assert posted.errors == {"ticket": "this field is required", "rows": "this field is required"}


def test_numbers_that_are_not_finite_are_refused():
    for text in ("nan", "inf", "-Infinity", "1e999"):
        assert read(ticket="CHG-1", rows="1", risk="low", ratio=text).errors == {
            "ratio": "enter a number"
        }


def test_numbers_are_recorded_as_typed_an_integer_never_through_a_float():
    for text, rows in (("12345678901234567", 12345678901234567), ("1e3", 1000), ("1.0", 1)):
        posted = read(ticket="CHG-1", rows=text, risk="low")
        assert posted.errors == {}, text
        assert posted.form is not None
        assert (posted.form["rows"], type(posted.form["rows"])) == (rows, int)
    numbers = policies.Policy(form={"type": "object", "properties": {"n": {"type": "number"}}})
    for text, number in (("12345678901234567", 12345678901234567), ("-7", -7), ("0.25", 0.25)):
        posted = forms.read(numbers, Verdict.APPROVE, "", {"form.n": text})
        assert posted.form == {"n": number}
        assert posted.form is not None
        assert type(posted.form["n"]) is type(number)
    assert read(ticket="CHG-1", rows="1.5", risk="low").errors == {"rows": "enter a whole number"}


def test_a_json_field_refuses_what_is_not_json_and_deep_nesting():
    for text in ("NaN", "[Infinity]", '{"a": -Infinity}', "[" * 100_000, "[" * 65 + "]" * 65):
        posted = read(ticket="CHG-1", rows="1", risk="low", tables=text)
        assert set(posted.errors) == {"tables"}, text[:20]
        assert posted.errors["tables"].startswith("this field takes JSON")
    nested = read(ticket="CHG-1", rows="1", risk="low", tables="[" * 64 + "]" * 64)
    assert set(nested.errors) == {"tables"}  # JSON, but not an array of strings
    assert "is not of type" in nested.errors["tables"]


def test_a_rejection_reads_no_form_but_still_needs_its_comment():
    assert read(Verdict.REJECT, comment="", ticket="nonsense").errors == {
        "comment": "a comment is required"
    }
    assert read(Verdict.REJECT, comment="too risky").form is None


def test_a_comment_over_the_limit_is_refused():
    posted = forms.read(policies.Policy(), Verdict.REJECT, "x" * (forms.MAX_COMMENT + 1), {})
    assert posted.errors == {"comment": "the comment must be at most 10,000 characters"}


def test_a_schema_problem_no_field_can_fix_is_reported_for_the_whole_form():
    schema = {"type": "object", "required": ["hidden"], "properties": {"note": {"type": "string"}}}
    posted = forms.read(policies.Policy(form=schema), Verdict.APPROVE, "", {})
    assert posted.errors == {"": "'hidden' is a required property"}


MULTI = {
    "type": "object",
    "required": ["regions"],
    "properties": {
        "regions": {"type": "array", "items": {"enum": ["eu", "us", 7]}, "minItems": 2},
        "tags": {"type": "array", "items": {"enum": ["a", "b"]}},
    },
}


def test_an_array_of_enums_is_a_group_of_checkboxes_read_back_in_the_schemas_order():
    regions, tags = forms.fields_of(MULTI)
    assert (regions.kind, regions.required, regions.choices) == (
        "multi",
        True,
        (("eu", "eu"), ("us", "us"), ("7", 7)),
    )
    assert tags.kind == "multi"
    posted = forms.posted_values(
        [("form.regions", "7"), ("form.regions", "eu"), ("comment", "fine")]
    )
    assert posted == {"form.regions": ["7", "eu"], "comment": "fine"}
    decision = forms.read(policies.Policy(form=MULTI), Verdict.APPROVE, "fine", posted)
    assert decision.errors == {}
    assert decision.form == {"regions": ["eu", 7]}  # nothing ticked in tags: left out


def test_an_optional_group_of_checkboxes_left_unticked_is_omitted_despite_min_items():
    schema = {
        "type": "object",
        "properties": {"tags": {"type": "array", "items": {"enum": ["a", "b"]}, "minItems": 1}},
    }
    skipped = forms.read(policies.Policy(form=schema), Verdict.APPROVE, "", {})
    assert (skipped.errors, skipped.form) == ({}, {})
    ticked = forms.read(policies.Policy(form=schema), Verdict.APPROVE, "", {"form.tags": "b"})
    assert (ticked.errors, ticked.form) == ({}, {"tags": ["b"]})


def test_a_group_of_checkboxes_reports_too_few_none_or_unknown_choices_against_itself():
    policy = policies.Policy(form=MULTI)
    one = forms.read(policy, Verdict.APPROVE, "", {"form.regions": "eu"})
    assert one.errors == {"regions": "['eu'] is too short"}  # the schema's minItems
    none = forms.read(policy, Verdict.APPROVE, "", {})
    assert none.errors == {"regions": "choose at least one"}
    odd = forms.read(policy, Verdict.APPROVE, "", {"form.regions": ["eu", "mars"]})
    assert odd.errors == {"regions": "choose among the listed values"}
