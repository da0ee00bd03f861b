"""Approvals: one durable wait for a human decision, and the rules that settle it.

``pending -> approved | rejected | expired | canceled``. The first settlement wins; the
functions here decide *whether* a change is allowed and *what* it leads to, and the services
apply that inside one transaction with the approval row locked.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from signoff import errors
from signoff.domain import policies, principals, reminders

MAX_TITLE = 200
MAX_BODY_BYTES = 64 * 1024
MAX_CONTEXT_BYTES = 256 * 1024


class Status(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELED = "canceled"


class Verdict(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


class Channel(StrEnum):
    API = "api"
    CLI = "cli"
    WEB = "web"
    LINK = "link"
    SLACK = "slack"


class Reason(StrEnum):
    """Why an approval settled."""

    DECISION = "decision"
    TIMEOUT = "timeout"
    HEARTBEAT = "heartbeat"
    CANCELED = "canceled"


@dataclass(frozen=True)
class Decision:
    id: str
    approval_id: str
    user_id: str
    user_email: str
    verdict: Verdict
    comment: str
    form: dict[str, Any] | None
    channel: Channel
    decided_at: datetime


@dataclass
class Approval:
    id: str
    title: str
    body: str
    context: dict[str, Any]
    labels: list[str]
    requester_id: str
    approvers: list[policies.ApproverRef]
    policy: policies.Policy
    status: Status
    on_timeout: policies.OnTimeout
    created_at: datetime
    deadline_at: datetime
    heartbeat_timeout_seconds: int | None
    heartbeat_at: datetime | None
    callback_url: str | None
    outcome: dict[str, Any] | None = None
    settled_at: datetime | None = None
    decisions: list[Decision] = field(default_factory=list)
    timers: list[reminders.Timer] = field(default_factory=list)  # reminders and escalation

    @property
    def is_pending(self) -> bool:
        return self.status is Status.PENDING

    @property
    def heartbeat_deadline_at(self) -> datetime | None:
        if self.heartbeat_timeout_seconds is None or self.heartbeat_at is None:
            return None
        return self.heartbeat_at + timedelta(seconds=self.heartbeat_timeout_seconds)

    @property
    def due_at(self) -> datetime:
        """When the scheduler must look at this approval next, if nobody decides."""
        heartbeat = self.heartbeat_deadline_at
        return min(self.deadline_at, heartbeat) if heartbeat else self.deadline_at


def check_sizes(title: str, body: str, context_bytes: int) -> None:
    if not title.strip() or len(title) > MAX_TITLE:
        raise errors.InvalidInput(f"title must be 1 to {MAX_TITLE} characters", field="title")
    if len(body.encode()) > MAX_BODY_BYTES:
        raise errors.InvalidInput("body must be at most 64 KiB", field="body")
    if context_bytes > MAX_CONTEXT_BYTES:
        raise errors.InvalidInput("context must be at most 256 KiB of JSON", field="context")


def check_can_decide(
    approval: Approval,
    *,
    user_id: str,
    team_ids: set[str],
    verdict: Verdict,
    comment: str,
    form: dict[str, Any] | None,
) -> None:
    """Raise the reason ``user_id`` may not record this decision now, in the order users
    expect: a settled approval says so first, whoever asks."""
    if not approval.is_pending:
        raise errors.AlreadyDecided(
            f"approval {approval.id} is already {approval.status.value}",
            approval_status=approval.status.value,
            outcome=approval.outcome,
        )
    if user_id == approval.requester_id and not approval.policy.requester_can_decide:
        raise errors.RequesterCannotDecide()
    if not is_approver(approval, user_id=user_id, team_ids=team_ids):
        raise errors.NotAnApprover()
    if any(decision.user_id == user_id for decision in approval.decisions):
        raise errors.DuplicateDecision()
    if approval.policy.comment_required and not comment.strip():
        raise errors.CommentRequired()
    if approval.policy.form is not None and (verdict is Verdict.APPROVE or form):
        problems = policies.form_errors(approval.policy.form, form or {})
        if problems:
            raise errors.InvalidForm(errors=problems)


def undecided(approval: Approval, people: dict[str, str]) -> dict[str, str]:
    """Those of ``people`` (id -> email) who have not decided ``approval`` yet."""
    decided = {decision.user_id for decision in approval.decisions}
    return {user_id: email for user_id, email in people.items() if user_id not in decided}


def is_approver(approval: Approval, *, user_id: str, team_ids: set[str]) -> bool:
    return any(
        (ref.kind == "user" and ref.id == user_id) or (ref.kind == "team" and ref.id in team_ids)
        for ref in approval.approvers
    )


def settlement(policy: policies.Policy, decisions: list[Decision]) -> Status | None:
    """The status the decisions so far settle the approval into, or None while undecided."""
    rejections = sum(1 for decision in decisions if decision.verdict is Verdict.REJECT)
    if rejections >= policy.rejections_to_reject:
        return Status.REJECTED
    approvals = sum(1 for decision in decisions if decision.verdict is Verdict.APPROVE)
    if approvals >= policy.quorum:
        return Status.APPROVED
    return None


def timeout_status(on_timeout: policies.OnTimeout) -> Status:
    return {
        policies.OnTimeout.REJECT: Status.REJECTED,
        policies.OnTimeout.APPROVE: Status.APPROVED,
        policies.OnTimeout.EXPIRE: Status.EXPIRED,
    }[on_timeout]


def outcome(status: Status, reason: Reason, last: Decision | None = None) -> dict[str, Any]:
    """The payload the waiting workflow receives."""
    result: dict[str, Any] = {"status": status.value, "reason": reason.value}
    if last is not None:
        result |= {
            "decided_by": last.user_email,
            "comment": last.comment,
            "form": last.form,
        }
    return result


def settled_by(approval: Approval, people: Mapping[str, principals.User]) -> str | None:
    """Who or what settled ``approval``, in words for a page: the deciders whose verdict won
    ("Alice Liddell and bob@example.com": by name when ``people`` has them by id, else by
    email), "the deadline passing", ...; None while it is pending."""
    if approval.is_pending:
        return None
    reason = (approval.outcome or {}).get("reason")
    if reason != Reason.DECISION:
        return _SETTLED_BY.get(str(reason), "signoff")
    won = Verdict.APPROVE if approval.status is Status.APPROVED else Verdict.REJECT
    names = [_name(d, people) for d in approval.decisions if d.verdict is won]
    return " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names) or (
        "signoff"
    )


_SETTLED_BY = {
    Reason.TIMEOUT.value: "the deadline passing",
    Reason.HEARTBEAT.value: "the workflow's heartbeat stopping",
    Reason.CANCELED.value: "its cancellation",
}


def _name(decision: Decision, people: Mapping[str, principals.User]) -> str:
    person = people.get(decision.user_id)
    return person.name if person and person.name else decision.user_email


def readable_context(
    context: dict[str, Any], *, max_items: int = 20, max_chars: int = 200
) -> tuple[list[tuple[str, str]], int]:
    """The context's top-level entries as (key, text) pairs for people to read, and how many
    entries did not fit: strings as they are, anything else as compact JSON, each cut to
    ``max_chars``. Never markup: whoever shows them escapes them."""
    shown = [
        (shortened(str(key), 60), shortened(_as_text(value), max_chars))
        for key, value in list(context.items())[:max_items]
    ]
    return shown, max(0, len(context) - max_items)


def shortened(text: str, limit: int) -> str:
    """``text``, cut to at most ``limit`` characters, the last an ellipsis, when longer."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def as_json(approval: Approval) -> dict[str, Any]:
    """The approval as JSON: the body of its events and, plus a URL, of the API's answers."""
    heartbeat_deadline = approval.heartbeat_deadline_at
    return {
        "id": approval.id,
        "title": approval.title,
        "body": approval.body,
        "context": approval.context,
        "labels": approval.labels,
        "status": approval.status.value,
        "requester_id": approval.requester_id,
        "approvers": [{"kind": r.kind, "id": r.id, "name": r.name} for r in approval.approvers],
        "policy": approval.policy.as_json(),
        "on_timeout": approval.on_timeout.value,
        "created_at": approval.created_at.isoformat(),
        "deadline_at": approval.deadline_at.isoformat(),
        "heartbeat_timeout_seconds": approval.heartbeat_timeout_seconds,
        "heartbeat_deadline_at": heartbeat_deadline.isoformat() if heartbeat_deadline else None,
        "callback_url": approval.callback_url,
        "outcome": approval.outcome,
        "settled_at": approval.settled_at.isoformat() if approval.settled_at else None,
        "decisions": [decision_json(d) for d in approval.decisions],
        **reminders.schedule_json(approval.timers),
    }


def decision_json(decision: Decision) -> dict[str, Any]:
    return {
        "id": decision.id,
        "user_id": decision.user_id,
        "user": decision.user_email,
        "verdict": decision.verdict.value,
        "comment": decision.comment,
        "form": decision.form,
        "channel": decision.channel.value,
        "decided_at": decision.decided_at.isoformat(),
    }
