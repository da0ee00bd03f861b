"""Reminders and escalation: an approval's timers, and the rules that place them.

A policy (named or inline) may remind the people who have not decided yet at a few moments
after creation (``reminders``), and escalate once (``escalation``): add more approvers at a
moment and tell them. Both are durations after creation, and both must come before the
deadline, at which the default outcome applies.

At creation the schedule becomes one ``Timer`` per moment, stored with the approval (the
scheduler fires each once, under the approval's lock). A timer is ``scheduled`` until it is
``done`` (it fired) or ``skipped`` (the approval settled first).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from signoff import errors
from signoff.domain import policies
from signoff.domain.policies import ApproverRef, Escalation, refs_json

MAX_REMINDERS = 10


class Kind(StrEnum):
    REMINDER = "reminder"
    ESCALATION = "escalation"


class State(StrEnum):
    SCHEDULED = "scheduled"
    DONE = "done"  # a reminder sent, an escalation made
    SKIPPED = "skipped"  # the approval settled first


@dataclass
class Timer:
    """One moment of an approval's schedule. ``seq`` orders an approval's timers."""

    approval_id: str
    seq: int
    kind: Kind
    due_at: datetime
    approvers: tuple[ApproverRef, ...] = ()  # an escalation's
    state: State = State.SCHEDULED
    done_at: datetime | None = None

    @property
    def is_scheduled(self) -> bool:
        return self.state is State.SCHEDULED


def parse_reminders(values: list[int | str]) -> tuple[int, ...]:
    """Seconds after creation of each reminder: at most ``MAX_REMINDERS``, increasing, no
    repeats. ``InvalidInput`` names the field ``reminders``."""
    if len(values) > MAX_REMINDERS:
        raise errors.InvalidInput(
            f"at most {MAX_REMINDERS} reminders, not {len(values)}", field="reminders"
        )
    seconds = tuple(policies.parse_duration(value, name="reminders") for value in values)
    if any(later <= earlier for earlier, later in itertools.pairwise(seconds)):
        raise errors.InvalidInput(
            "reminders must be in increasing order, without repeats, e.g. ['4h', '12h']",
            field="reminders",
        )
    return seconds


def parse_escalation_after(value: int | str) -> int:
    return policies.parse_duration(value, name="escalation.after")


def check_before_deadline(
    timeout_seconds: int, reminders: tuple[int, ...], escalation: Escalation | None
) -> None:
    """Each reminder and the escalation must come before the deadline: at the deadline the
    default outcome applies, and nobody can act on a reminder any more."""
    deadline = policies.format_duration(timeout_seconds)
    late = [r for r in reminders if r >= timeout_seconds]
    if late:
        raise errors.InvalidInput(
            f"reminder {policies.format_duration(late[0])} is not before the deadline "
            f"({deadline} after creation)",
            field="reminders",
        )
    if escalation is not None and escalation.after_seconds >= timeout_seconds:
        raise errors.InvalidInput(
            f"escalation after {policies.format_duration(escalation.after_seconds)} is not "
            f"before the deadline ({deadline} after creation)",
            field="escalation.after",
        )


def schedule(
    approval_id: str,
    created_at: datetime,
    timeout_seconds: int,
    reminders: tuple[int, ...],
    escalation: Escalation | None,
) -> list[Timer]:
    """The timers of a new approval, in the order they fall due (a reminder before an
    escalation due at the same moment)."""
    check_before_deadline(timeout_seconds, reminders, escalation)
    moments: list[tuple[int, Kind, tuple[ApproverRef, ...]]] = [
        (seconds, Kind.REMINDER, ()) for seconds in reminders
    ]
    if escalation is not None:
        moments.append((escalation.after_seconds, Kind.ESCALATION, escalation.approvers))
    moments.sort(key=lambda moment: (moment[0], moment[1] is Kind.ESCALATION))
    return [
        Timer(approval_id, seq, kind, created_at + timedelta(seconds=seconds), approvers)
        for seq, (seconds, kind, approvers) in enumerate(moments)
    ]


def reminder_number(timers: list[Timer], timer: Timer) -> tuple[int, int]:
    """Which reminder ``timer`` is (from 1), and of how many."""
    found = [t.seq for t in timers if t.kind is Kind.REMINDER]
    return found.index(timer.seq) + 1, len(found)


def schedule_json(timers: list[Timer]) -> dict[str, Any]:
    """An approval's schedule as its JSON shows it: ``reminders`` and ``escalation``."""
    reminders = [
        {"at": t.due_at.isoformat(), "status": t.state.value, "sent_at": _done_at(t)}
        for t in timers
        if t.kind is Kind.REMINDER
    ]
    escalation = None
    for t in timers:
        if t.kind is Kind.ESCALATION:
            escalation = {
                "at": t.due_at.isoformat(),
                "approvers": refs_json(t.approvers),
                "status": t.state.value,
                "escalated_at": _done_at(t),
            }
    return {"reminders": reminders, "escalation": escalation}


def _done_at(timer: Timer) -> str | None:
    """When the timer fired; None while scheduled, or when it was skipped."""
    if timer.state is not State.DONE or timer.done_at is None:
        return None
    return timer.done_at.isoformat()
