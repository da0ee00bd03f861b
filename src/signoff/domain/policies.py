"""Approval policies: who may decide, how many must agree, what a decision must carry.

A policy is data attached to each approval when it is created. A named policy
(``NamedPolicy``) is a reusable one that approvals refer to by name; it resolves into this
same shape, copied onto the approval, so that editing it later changes no approval already
open. The rules here are pure functions over the approval's decisions, so the decision
service, the scheduler and the tests share one definition of "settled".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import jsonschema

from signoff import errors

MAX_TIMEOUT_SECONDS = 366 * 24 * 3600
DEFAULT_TIMEOUT_SECONDS = 24 * 3600

_UNITS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"(\d+)\s*([wdhms])")
NAME_PATTERN = r"[a-z0-9][a-z0-9._-]{0,99}"  # schemas.PolicyName says the same for the SDK
_NAME = re.compile(NAME_PATTERN)


@dataclass(frozen=True)
class ApproverRef:
    """One user or team that may decide, resolved from a reference such as ``team:owners``."""

    kind: str  # "user" or "team"
    id: str
    name: str


def refs_json(refs: tuple[ApproverRef, ...] | list[ApproverRef]) -> list[dict[str, str]]:
    return [{"kind": r.kind, "id": r.id, "name": r.name} for r in refs]


@dataclass(frozen=True)
class Escalation:
    """After ``after_seconds``, ``approvers`` (resolved, as an approval's are) may decide too
    (``domain/reminders.py`` schedules it)."""

    after_seconds: int
    approvers: tuple[ApproverRef, ...]

    def as_json(self) -> dict[str, Any]:
        return {"after_seconds": self.after_seconds, "approvers": refs_json(self.approvers)}


class OnTimeout(StrEnum):
    """What an approval becomes when nobody settled it by its deadline."""

    REJECT = "reject"
    APPROVE = "approve"
    EXPIRE = "expire"


@dataclass(frozen=True)
class Policy:
    """The decision rules of one approval, and the named policy they came from (``name``;
    None when the request gave them inline)."""

    quorum: int = 1
    rejections_to_reject: int = 1
    requester_can_decide: bool = False
    comment_required: bool = False
    form: dict[str, Any] | None = field(default=None, hash=False)
    # An emailed decision link alone decides (False), or its approver must also be signed in.
    link_requires_login: bool = False
    name: str | None = None

    def __post_init__(self) -> None:
        if self.quorum < 1 or self.rejections_to_reject < 1:
            raise errors.InvalidInput("quorum and rejections_to_reject must be at least 1")
        if self.form is not None:
            check_form_schema(self.form)

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name} | self.rules_json()

    def rules_json(self) -> dict[str, Any]:
        """The decision rules alone, without the name of the policy they came from."""
        return {
            "quorum": self.quorum,
            "rejections_to_reject": self.rejections_to_reject,
            "requester_can_decide": self.requester_can_decide,
            "comment_required": self.comment_required,
            "form": self.form,
            "link_requires_login": self.link_requires_login,
        }


@dataclass(frozen=True)
class NamedPolicy:
    """A reusable policy that approvals name instead of spelling it out
    (``policy="prod-promotion"``): who decides, the decision rules, and optionally the
    timeout and what it leads to. What it fixes, a request may not change (``check_request``),
    so a requester cannot weaken a governance policy."""

    id: str
    name: str
    description: str
    approvers: tuple[ApproverRef, ...]
    rules: Policy  # carries this policy's name, as every approval made from it does
    timeout_seconds: int | None  # None: the request's timeout, or the default
    on_timeout: OnTimeout | None  # None: the request's, or the default
    created_at: datetime
    updated_at: datetime
    reminders: tuple[int, ...] | None = None  # seconds after creation; None: the request's
    escalation: Escalation | None = None  # a request naming the policy may not add one

    def __post_init__(self) -> None:
        check_policy_name(self.name)
        if not self.approvers:
            raise errors.InvalidInput("a policy needs at least one approver", field="approvers")
        if self.rules.name != self.name:
            raise ValueError(
                f"the rules of policy {self.name!r} carry the name {self.rules.name!r}"
            )

    def check_request(
        self,
        *,
        approvers: list[str] | None,
        timeout_seconds: int | None,
        on_timeout: str | None,
        reminders: tuple[int, ...] | None = None,
        escalation: bool = False,
    ) -> None:
        """Refuse an approval request that would change what this policy fixes. Repeating a
        fixed timeout, outcome or reminders is allowed; giving approvers or an escalation
        (more approvers) never is. A request never makes silence an approval: ``on_timeout:
        approve`` needs a policy that says so itself, otherwise a requester could wait out the
        approvers of a governance policy."""
        if approvers is not None:
            raise errors.InvalidInput(
                f"policy {self.name!r} says who decides: leave approvers out", field="approvers"
            )
        if escalation:
            raise errors.InvalidInput(
                f"policy {self.name!r} says who decides, escalation included: leave escalation out",
                field="escalation",
            )
        if self.reminders is not None and reminders not in (None, self.reminders):
            raise errors.InvalidInput(
                f"policy {self.name!r} fixes the reminders: leave reminders out",
                field="reminders",
            )
        fixed = self.timeout_seconds
        if fixed is not None and timeout_seconds not in (None, fixed):
            raise errors.InvalidInput(
                f"policy {self.name!r} fixes the timeout at {format_duration(fixed)}: "
                "leave timeout out",
                field="timeout",
            )
        if self.on_timeout is not None and on_timeout not in (None, self.on_timeout):
            raise errors.InvalidInput(
                f"policy {self.name!r} fixes on_timeout at {self.on_timeout}: leave on_timeout out",
                field="on_timeout",
            )
        if self.on_timeout is None and on_timeout == OnTimeout.APPROVE:
            raise errors.InvalidInput(
                f"policy {self.name!r} does not let silence approve: on_timeout may be reject "
                "or expire",
                field="on_timeout",
            )

    def as_json(self) -> dict[str, Any]:
        """The policy as the API shows it."""
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "approvers": [{"kind": r.kind, "id": r.id, "name": r.name} for r in self.approvers],
            **self.rules.rules_json(),
            "timeout_seconds": self.timeout_seconds,
            "on_timeout": self.on_timeout.value if self.on_timeout else None,
            "reminders": list(self.reminders) if self.reminders is not None else None,
            "escalation": self.escalation.as_json() if self.escalation else None,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


def rules_in_words(rules: dict[str, Any]) -> list[str]:
    """Decision rules (``Policy.rules_json()``, as an approval's JSON carries them) as short
    sentences for an approver."""
    quorum, rejections = rules["quorum"], rules["rejections_to_reject"]
    found = [
        "One approval approves it." if quorum == 1 else f"{quorum} approvals approve it.",
        "Any rejection rejects it." if rejections == 1 else f"{rejections} rejections reject it.",
    ]
    if rules["comment_required"]:
        found.append("Every decision needs a comment.")
    if rules["form"] is not None:
        found.append("Approving asks for a few details.")
    return found


def check_policy_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise errors.InvalidInput(
            f"policy name {name!r} is not a lower-case slug: 1 to 100 of a-z, 0-9, '.', '_' "
            "and '-', starting with a letter or digit",
            field="name",
        )


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


def format_duration(seconds: int) -> str:
    """``seconds`` as ``parse_duration`` reads it: ``3d``, ``1h30m``, ``90s`` as ``1m30s``."""
    parts = []
    for unit in "dhms":
        amount, seconds = divmod(seconds, _UNITS[unit])
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts) or "0s"


def check_form_schema(schema: dict[str, Any]) -> None:
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise errors.InvalidInput(
            f"the decision form is not a valid JSON Schema: {exc.message}", field="form"
        ) from exc


def form_errors(schema: dict[str, Any], data: dict[str, Any]) -> list[dict[str, str]]:
    """Every way ``data`` fails the decision form, one entry per field, in document order."""
    validator = jsonschema.Draft202012Validator(schema)
    found = sorted(validator.iter_errors(data), key=lambda error: list(error.absolute_path))
    return [
        {"field": "/".join(str(part) for part in error.absolute_path), "message": error.message}
        for error in found
    ]
