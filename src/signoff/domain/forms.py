"""A decision as a person fills it in on a page: the comment, and the policy's decision form
(a JSON Schema) as HTML fields, read back into the JSON the schema checks.

A page shows each top-level property of the schema as one field (required ones first): a text
box for a string, a number box for a number or an integer, a checkbox for a boolean, a list to
choose from for an ``enum``, a group of checkboxes for an array of ``enum`` items, and a text
area taking JSON for anything else (objects, other arrays).
What is posted is converted by the field's kind, then the schema judges it
(``policies.form_errors``), so every problem is reported against the field a person can fix.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from signoff.domain import json_text, policies
from signoff.domain.approvals import Verdict

MAX_COMMENT = 10_000  # characters; schemas.DecisionCreate allows the same over the API
FIELD_PREFIX = "form."  # posted names of form fields, apart from "comment" and "csrf_token"


@dataclass(frozen=True)
class Field:
    """One property of the decision form as an HTML field."""

    name: str  # the property's name; posted as FIELD_PREFIX + name
    label: str
    help: str
    kind: str  # text | number | integer | boolean | choice | multi | json
    required: bool
    choices: tuple[tuple[str, Any], ...] = ()  # (as shown and posted, the schema's value)
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None

    @property
    def posted_name(self) -> str:
        return FIELD_PREFIX + self.name


@dataclass(frozen=True)
class Posted:
    """A decision read from a page: what to record, or what to fix first."""

    comment: str
    form: dict[str, Any] | None
    errors: dict[str, str] = field(default_factory=dict)  # "comment", a field's name, or ""


Values = Mapping[str, str | list[str]]  # posted name -> its value, or values when repeated


def posted_values(items: Iterable[tuple[str, object]]) -> dict[str, str | list[str]]:
    """A posted form's fields (``FormData.multi_items()``): one value as a string, a name
    posted more than once (a group of checkboxes) as the list of its values."""
    found: dict[str, str | list[str]] = {}
    for name, value in items:
        text = str(value)
        if name in found:
            before = found[name]
            found[name] = [*before, text] if isinstance(before, list) else [before, text]
        else:
            found[name] = text
    return found


def fields_of(schema: dict[str, Any] | None) -> list[Field]:
    """The fields a page shows for ``schema``: the required ones in the order ``required``
    lists them, then the others by name. Not the order of ``properties``: PostgreSQL keeps
    JSON objects as JSONB, which does not keep the order of their keys."""
    if schema is None:
        return []
    properties = schema.get("properties", {})
    required = [name for name in dict.fromkeys(schema.get("required", [])) if name in properties]
    others = sorted(name for name in properties if name not in required)
    return [_field(name, properties[name], name in required) for name in required + others]


def read(policy: policies.Policy, verdict: Verdict, comment: str, posted: Values) -> Posted:
    """The decision ``posted`` stands for under ``policy``, with every problem found, each
    keyed by the field to fix. Form fields are read for approvals only, as the API checks
    form data only for them; a rejection carries its reason in the comment."""
    errors: dict[str, str] = {}
    if policy.comment_required and not comment.strip():
        errors["comment"] = "a comment is required"
    elif len(comment) > MAX_COMMENT:
        errors["comment"] = f"the comment must be at most {MAX_COMMENT:,} characters"
    if policy.form is None or verdict is not Verdict.APPROVE:
        return Posted(comment, None, errors)
    data: dict[str, Any] = {}
    for spec in fields_of(policy.form):
        sent = posted.get(spec.posted_name, "")
        if spec.kind == "multi":
            value, wrong = _choices(spec, [sent] if isinstance(sent, str) else sent)
        else:
            raw = sent if isinstance(sent, str) else (sent[-1] if sent else "")
            value, wrong = _value(spec, raw.strip() if spec.kind != "json" else raw)
        if wrong:
            errors[spec.name] = wrong
        elif value is not _MISSING:
            data[spec.name] = value
    field_errors = bool(set(errors) - {"comment"})
    for problem in policies.form_errors(policy.form, data):
        name = problem["field"].split("/", 1)[0]
        if name or not field_errors:  # a field's own error already says what it lacks
            errors.setdefault(name, problem["message"])
    return Posted(comment, data, errors)


_MISSING = object()  # a field left empty: not part of the form data


def _field(name: str, spec: Any, required: bool) -> Field:
    spec = spec if isinstance(spec, dict) else {}
    items = spec.get("items")
    enum = spec.get("enum", ())
    if "enum" in spec:
        kind = "choice"
    elif _type_of(spec) == "array" and isinstance(items, dict) and "enum" in items:
        kind, enum = "multi", items["enum"]
    else:
        kind = _KINDS.get(_type_of(spec) or "", "json")
    return Field(
        name=name,
        label=str(spec.get("title") or name.replace("_", " ").capitalize()),
        help=str(spec.get("description", "")),
        kind=kind,
        required=required and kind != "boolean",  # an unticked box is false, never missing
        choices=tuple((_as_text(value), value) for value in enum),
        minimum=spec.get("minimum") if kind in ("number", "integer") else None,
        maximum=spec.get("maximum") if kind in ("number", "integer") else None,
        max_length=spec.get("maxLength") if kind == "text" else None,
    )


_KINDS = {"string": "text", "number": "number", "integer": "integer", "boolean": "boolean"}


def _type_of(spec: dict[str, Any]) -> str | None:
    kind = spec.get("type")
    if isinstance(kind, list):  # ["string", "null"]: the field is that type, or left empty
        kind = next((k for k in kind if k != "null"), None)
    return kind if isinstance(kind, str) else None


def _value(spec: Field, raw: str) -> tuple[Any, str | None]:
    """The JSON value of one posted field, or the problem with it."""
    if spec.kind == "boolean":
        return raw in ("on", "true"), None
    if not raw.strip():
        return _MISSING, "this field is required" if spec.required else None
    if spec.kind == "choice":
        return _choice(raw, spec.choices)
    if spec.kind in ("number", "integer"):
        return _number(raw, integer=spec.kind == "integer")
    if spec.kind == "json":
        try:
            return json_text.loads(raw), None
        except json_text.NotJson:
            return _MISSING, 'this field takes JSON, such as [1, 2] or {"key": "value"}'
    return raw, None


def _choices(spec: Field, sent: list[str]) -> tuple[Any, str | None]:
    """The chosen values of a group of checkboxes, in the schema's order; none ticked is
    "omitted" (not ``[]``, which the schema's minItems could refuse)."""
    chosen = [value for shown, value in spec.choices if shown in sent]
    if len(chosen) < len({item for item in sent if item}):
        return _MISSING, "choose among the listed values"
    if not chosen:  # nothing ticked: an optional group is left out, as an empty field is
        return _MISSING, "choose at least one" if spec.required else None
    return chosen, None


def _choice(raw: str, choices: tuple[tuple[str, Any], ...]) -> tuple[Any, str | None]:
    for shown, value in choices:
        if raw == shown:
            return value, None
    return _MISSING, "choose one of the listed values"


def _number(raw: str, *, integer: bool) -> tuple[Any, str | None]:
    """``raw`` as typed: an integer's digits exactly (never through a float, which rounds
    beyond 2**53), otherwise a finite float; for an integer field, an integral float such as
    ``1e3`` or ``1.0`` is accepted too."""
    try:
        return int(raw), None
    except ValueError:
        pass
    try:
        number = float(raw)
    except ValueError:
        return _MISSING, "enter a whole number" if integer else "enter a number"
    if not math.isfinite(number):
        return _MISSING, "enter a number"
    if integer:
        return (int(number), None) if number.is_integer() else (_MISSING, "enter a whole number")
    return number, None


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
