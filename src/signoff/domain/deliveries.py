"""Deliveries: one event handed to one destination, at least once.

Destinations are an approval's own callback, the email an invitation or reset needs, and
what subscriptions name (a webhook, email recipients, a Slack channel, an apprise URL). A
delivery copies its destination when it is written, so editing or deleting a subscription
later changes nothing already on its way.

A delivery is due when ``next_attempt_at`` has passed. Claiming one moves that time forward by
a lease, so a worker that dies mid-send leaves it due again once the lease runs out; nothing is
held in memory. Failures back off exponentially with full jitter until the delivery is older
than the maximum age, and then it is dead-lettered.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from signoff.domain.events import Event


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


class TargetKind(StrEnum):
    CALLBACK = "callback"  # an approval's own callback_url
    EMAIL = "email"  # one recipient address; the message is rendered from the event
    WEBHOOK = "webhook"  # a subscription's URL, signed as callbacks are
    SLACK = "slack"  # a subscription's channel
    APPRISE = "apprise"  # a subscription's apprise URL


@dataclass(frozen=True)
class Delivery:
    id: str
    event: Event
    target_kind: TargetKind
    target: str
    attempts: int
    created_at: datetime
    subscription_id: str | None = None

    def payload(self) -> dict[str, Any]:
        """The envelope this delivery carries: all of it to the approval's own callback, the
        public one (no internal fields) anywhere else."""
        if self.target_kind is TargetKind.CALLBACK:
            return self.event.envelope()
        return self.event.public_envelope()


@dataclass(frozen=True)
class AttemptResult:
    delivery_id: str
    ok: bool
    status_code: int | None
    error: str | None
    latency_ms: int
    response_excerpt: str | None


@dataclass(frozen=True)
class Backoff:
    base_seconds: float = 1.0
    cap_seconds: float = 3600.0
    max_age: timedelta = timedelta(days=3)

    def next_delay(self, attempts: int) -> timedelta:
        """Equal jitter: between half and all of ``base * 2**attempts``, capped.

        The random half spreads retries of many deliveries that failed together; the fixed
        half keeps a retry from landing right after the failure it follows.
        """
        ceiling = min(self.cap_seconds, self.base_seconds * 2 ** min(attempts, 32))
        return timedelta(seconds=random.uniform(ceiling / 2, ceiling))  # noqa: S311

    def is_too_old(self, created_at: datetime, now: datetime) -> bool:
        return now - created_at >= self.max_age
