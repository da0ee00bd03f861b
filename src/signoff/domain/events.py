"""Events: immutable facts written in the same transaction as the change they describe.

The event table is the outbox: deliveries reference events, and a future subscription matcher
reads the same rows. Payloads are versioned by their ``type`` name and stay JSON-serialisable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

APPROVAL_CREATED = "approval.created"
APPROVAL_DECIDED = "approval.decided"
APPROVAL_SETTLED = "approval.settled"
APPROVAL_EXPIRED = "approval.expired"
APPROVAL_CANCELED = "approval.canceled"
INVITATION_SENT = "invitation.sent"
PASSWORD_RESET_REQUESTED = "password_reset.requested"  # noqa: S105 (an event type)


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    subject: str
    actor: str
    data: dict[str, Any]
    occurred_at: datetime

    def envelope(self) -> dict[str, Any]:
        """The JSON body a webhook receives (Standard Webhooks' ``type``/``timestamp``/``data``)."""
        return {
            "id": self.id,
            "type": self.type,
            "timestamp": self.occurred_at.isoformat(),
            "subject": self.subject,
            "actor": self.actor,
            "data": self.data,
        }
