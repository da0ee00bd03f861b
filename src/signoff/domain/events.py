"""Events: immutable facts written in the same transaction as the change they describe, and
the catalogue of every type there is.

The event table is the outbox: deliveries refer to events, to an approval's own callback, to
the email of an invitation, and to every subscription whose filter matches.

The catalogue (``CATALOGUE``) is the one place that says which types exist, what each means,
the version of its payload (``data``), and what no subscriber may see:

* an **internal** type is signoff's own business (an invitation's email carries a nonce that,
  with the server key, makes the sign-up link): subscriptions never match it;
* **internal fields** of a public type are left out of the envelope that subscribers receive
  and filter on (an approval's ``callback_url`` belongs to the requester and may hold a token;
  the addresses signoff emailed are people's, not every subscriber's).

A type declared without a producer (``produced=False``) names an event a later feature will
write (reminders, escalation, models, review loops), so subscriptions may already filter on it.
A payload's version changes only when a field is removed or changes meaning; adding fields
keeps it. Every envelope carries the version its event was written with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

APPROVAL_CREATED = "approval.created"
APPROVAL_DECIDED = "approval.decided"
APPROVAL_SETTLED = "approval.settled"
APPROVAL_EXPIRED = "approval.expired"
APPROVAL_CANCELED = "approval.canceled"
APPROVAL_REMINDER_DUE = "approval.reminder_due"
APPROVAL_ESCALATED = "approval.escalated"
INVITATION_SENT = "invitation.sent"
PASSWORD_RESET_REQUESTED = "password_reset.requested"  # noqa: S105 (an event type)


@dataclass(frozen=True)
class EventType:
    name: str
    version: int  # of the payload (``data``)
    description: str  # for people: one sentence, shown in emails
    data: str = ""  # for developers: what ``data`` holds
    internal: bool = False  # never matched by subscriptions
    internal_fields: tuple[str, ...] = ()  # keys of ``data`` subscribers never see
    produced: bool = True  # False: declared for subscriptions; nothing writes it yet


_APPROVAL_FIELDS = ("callback_url",)
# Whom signoff emailed, by address: the email sender's business, not every subscriber's.
_EMAILED = ("emailed",)
_PLANNED = "Planned: nothing writes it yet."
CATALOGUE: Mapping[str, EventType] = {
    t.name: t
    for t in (
        EventType(
            APPROVAL_CREATED,
            1,
            "An approval was opened and waits for a decision.",
            "the approval (status pending)",
            internal_fields=_APPROVAL_FIELDS + _EMAILED,
        ),
        EventType(
            APPROVAL_DECIDED,
            1,
            "An approver decided.",
            "approval_id, title, decision, previous_status (pending), status (pending, or "
            "what this decision settled it as)",
        ),
        EventType(
            APPROVAL_EXPIRED,
            1,
            "Nobody settled an approval by its deadline or heartbeat deadline.",
            "approval_id, title, reason (timeout or heartbeat), previous_status, status",
        ),
        EventType(
            APPROVAL_CANCELED,
            1,
            "An approval was canceled.",
            "approval_id, title, reason (free text), previous_status, status (canceled)",
        ),
        EventType(
            APPROVAL_SETTLED,
            1,
            "An approval was settled, whatever settled it.",
            "the settled approval with its outcome, and previous_status; written after the "
            "event that caused it",
            internal_fields=_APPROVAL_FIELDS,
        ),
        EventType(
            APPROVAL_REMINDER_DUE,
            1,
            "An approval is still pending at one of its policy's reminders.",
            "approval_id, title, body, context, labels, status (pending), policy, deadline_at, "
            "decisions (how many so far), reminder (its number, from 1), reminders (how many "
            "there are), undecided and emailed (user_id and email of each person reminded)",
        ),
        EventType(
            APPROVAL_ESCALATED,
            1,
            "An approval was escalated to its policy's escalation approvers.",
            "approval_id, title, body, context, labels, status (pending), policy, deadline_at, "
            "decisions (how many so far), previous_approvers, added_approvers, approvers (after), "
            "emailed (user_id and email of each person it newly lets decide)",
        ),
        EventType(
            "model.version.registered",
            1,
            "A model version was registered.",
            _PLANNED,
            produced=False,
        ),
        EventType(
            "model.promoted",
            1,
            "A model version was promoted to an environment.",
            _PLANNED,
            produced=False,
        ),
        EventType(
            "loop.completed",
            1,
            "A human review loop has all its answers.",
            _PLANNED,
            produced=False,
        ),
        EventType(
            INVITATION_SENT,
            1,
            "An invitation email is due (internal).",
            "invitation_id, link_nonce, email, teams, role, invited_by, expires_at",
            internal=True,
            internal_fields=("link_nonce",),
        ),
        EventType(
            PASSWORD_RESET_REQUESTED,
            1,
            "A password reset email is due (internal).",
            "reset_id, link_nonce, email, name, expires_at",
            internal=True,
            internal_fields=("link_nonce",),
        ),
    )
}


def event_type(name: str) -> EventType:
    """The catalogue entry of ``name``; a type missing from it is a bug, not an input."""
    found = CATALOGUE.get(name)
    if found is None:
        raise ValueError(f"event type {name!r} is not in the catalogue (domain/events.py)")
    return found


def public_types() -> list[str]:
    """The types subscriptions may receive, in catalogue order."""
    return [t.name for t in CATALOGUE.values() if not t.internal]


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    subject: str
    actor: str
    data: dict[str, Any]
    occurred_at: datetime
    version: int = 1

    def envelope(self) -> dict[str, Any]:
        """The whole event as JSON, as an approval's own callback receives it (Standard
        Webhooks' ``type``/``timestamp``/``data``, and the payload's ``version``)."""
        return {
            "id": self.id,
            "type": self.type,
            "version": self.version,
            "timestamp": self.occurred_at.isoformat(),
            "subject": self.subject,
            "actor": self.actor,
            "data": self.data,
        }

    def public_envelope(self) -> dict[str, Any]:
        """What subscribers receive and their filters see: the envelope without the type's
        internal fields."""
        hidden = event_type(self.type).internal_fields
        envelope = self.envelope()
        envelope["data"] = {k: v for k, v in self.data.items() if k not in hidden}
        return envelope

    @property
    def is_internal(self) -> bool:
        return event_type(self.type).internal
