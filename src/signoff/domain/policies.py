"""Approval policies: who may decide, how many must agree, what a decision must carry.

A policy is data attached to each approval when it is created (named, reusable policies
resolve into this same shape). The rules here are pure functions over the approval's
decisions, so the decision service, the scheduler and the tests share one definition of
"settled".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import jsonschema

from signoff import errors

MAX_TIMEOUT_SECONDS = 366 * 24 * 3600
DEFAULT_TIMEOUT_SECONDS = 24 * 3600

_UNITS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"(\d+)\s*([wdhms])")


@dataclass(frozen=True)
class ApproverRef:
    """One user or team that may decide, resolved from a reference such as ``team:owners``."""

    kind: str  # "user" or "team"
    id: str
    name: str


class OnTimeout(StrEnum):
    """What an approval becomes when nobody settled it by its deadline."""

    REJECT = "reject"
    APPROVE = "approve"
    EXPIRE = "expire"


@dataclass(frozen=True)
class Policy:
    """The decision rules of one approval."""

    quorum: int = 1
    rejections_to_reject: int = 1
    requester_can_decide: bool = False
    comment_required: bool = False
    form: dict[str, Any] | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        if self.quorum < 1 or self.rejections_to_reject < 1:
            raise errors.InvalidInput("quorum and rejections_to_reject must be at least 1")
        if self.form is not None:
            check_form_schema(self.form)

    def as_json(self) -> dict[str, Any]:
        return {
            "quorum": self.quorum,
            "rejections_to_reject": self.rejections_to_reject,
            "requester_can_decide": self.requester_can_decide,
            "comment_required": self.comment_required,
            "form": self.form,
        }


def parse_duration(value: int | float | str, *, name: str = "timeout") -> int:
    """Seconds in ``value``: a number of seconds or a string such as ``24h`` or ``1h30m``."""
    if isinstance(value, bool):
        raise errors.InvalidInput(f"{name} must be a duration such as '24h'", field=name)
    if isinstance(value, int | float):
        seconds = int(value)
    else:
        text = value.strip().lower()
        if text.isdigit():
            seconds = int(text)
        else:
            parts = _DURATION.findall(text)
            if not parts or _DURATION.sub("", text).strip():
                raise errors.InvalidInput(
                    f"{name} {value!r} is not a duration such as '90s', '30m', '24h' or '7d'",
                    field=name,
                )
            seconds = sum(int(amount) * _UNITS[unit] for amount, unit in parts)
    if not 1 <= seconds <= MAX_TIMEOUT_SECONDS:
        raise errors.InvalidInput(f"{name} must be between 1 second and 1 year", field=name)
    return seconds


def check_form_schema(schema: dict[str, Any]) -> None:
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise errors.InvalidInput(
            f"the decision form is not a valid JSON Schema: {exc.message}"
        ) from exc


def form_errors(schema: dict[str, Any], data: dict[str, Any]) -> list[dict[str, str]]:
    """Every way ``data`` fails the decision form, one entry per field, in document order."""
    validator = jsonschema.Draft202012Validator(schema)
    found = sorted(validator.iter_errors(data), key=lambda error: list(error.absolute_path))
    return [
        {"field": "/".join(str(part) for part in error.absolute_path), "message": error.message}
        for error in found
    ]
