"""Deliveries: one event handed to one destination, at least once.

Destinations are an approval's own callback, the email an invitation or reset needs, and
what subscriptions name (a webhook, email recipients, a Slack channel, an apprise URL). A
delivery copies its destination when it is written, so editing or deleting a subscription
later changes nothing already on its way.

A delivery is due when ``next_attempt_at`` has passed. Claiming one moves that time forward by
a lease, so a worker that dies mid-send leaves it due again once the lease runs out; nothing is
held in memory. Failures back off exponentially with full jitter until the delivery is older
than the maximum age, and then it is dead-lettered.

An admin may *redrive* a dead delivery, once its receiver is fixed: it becomes pending again,
due at once, with the same id (receivers deduplicate by it) and a fresh maximum-age window.
The window counts from the delivery's ``created_at``, so a redrive moves that to the redrive's
time; when the delivery was first made stays on its event (``occurred_at``) and in the audit
log. Its backoff goes on from its attempt count: a receiver that fails again is not hammered.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from signoff import errors
from signoff.domain import apprise_urls, destinations
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


class Purpose(StrEnum):
    """Why a delivery was made, kept on it: a subscription's deliveries stay told apart from
    an approval's own after the subscription is deleted (its link is then gone)."""

    CALLBACK = "callback"  # the approval's own callback_url
    APPROVER = "approver"  # the email to one person who may decide an approval
    SUBSCRIPTION = "subscription"  # what a subscription matched, and updates of what it posted
    ACCOUNT = "account"  # an invitation or password-reset email


@dataclass(frozen=True)
class Delivery:
    id: str
    event: Event
    target_kind: TargetKind
    target: str
    attempts: int
    created_at: datetime
    subscription_id: str | None = None
    purpose: Purpose = Purpose.SUBSCRIPTION

    def payload(self) -> dict[str, Any]:
        """The envelope this delivery carries: all of it to the approval's own callback, the
        public one (no internal fields) anywhere else."""
        if self.target_kind is TargetKind.CALLBACK:
            return self.event.envelope()
        return self.event.public_envelope()


@dataclass(frozen=True)
class DeliveryRecord:
    """What is known about one delivery, for people looking into it (not for sending)."""

    id: str
    event_id: str
    event_type: str
    subject: str
    target_kind: str  # a ``TargetKind`` value; kept as stored, so a newer kind still reads
    target: str
    purpose: str  # a ``Purpose`` value, kept as stored as ``target_kind`` is
    status: DeliveryStatus
    attempts: int
    created_at: datetime  # the delivery's making, or its last redrive: max age counts from it
    next_attempt_at: datetime | None  # only while pending
    completed_at: datetime | None
    last_attempt_at: datetime | None
    failing_since: datetime | None  # the first failed attempt, unless it was delivered since
    last_error: str | None

    @property
    def is_dead(self) -> bool:
        return self.status is DeliveryStatus.DEAD

    def check_can_redrive(self) -> None:
        """Only a dead delivery is redriven: a pending one is still being tried, and a
        delivered one reached its receiver."""
        if not self.is_dead:
            raise errors.DeliveryNotDead(
                f"delivery {self.id} is {self.status.value}; only a dead delivery is redriven",
                delivery_status=self.status.value,
            )

    def redriven(self, at: datetime) -> DeliveryRecord:
        """This delivery after a redrive at ``at``: pending, due, and a fresh window."""
        return replace(
            self,
            status=DeliveryStatus.PENDING,
            created_at=at,
            next_attempt_at=at,
            completed_at=None,
        )


def failing_since(status: DeliveryStatus, first_failure: datetime | None) -> datetime | None:
    """Since when the destination has been refusing this delivery. A delivery is done at its
    first success, so it is failing from its first failed attempt until it is delivered."""
    return None if status is DeliveryStatus.DELIVERED else first_failure


@dataclass(frozen=True)
class Attempt:
    """One recorded try: when, what came back, how long it took."""

    attempted_at: datetime
    ok: bool
    status_code: int | None
    error: str | None
    latency_ms: int
    response_excerpt: str | None


@dataclass(frozen=True)
class DeliveryHistory:
    """A delivery and every attempt at it, oldest first."""

    record: DeliveryRecord
    attempts: list[Attempt]


@dataclass(frozen=True)
class AttemptResult:
    delivery_id: str
    ok: bool
    status_code: int | None
    error: str | None
    latency_ms: int
    response_excerpt: str | None
    retry_after: float | None = None  # seconds the receiver asked us to wait (HTTP 429)
    final: bool = False  # no retry can succeed (e.g. Slack's message_not_found): dead at once


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


@dataclass(frozen=True)
class FailingDelivery:
    """One delivery of an object's events that has failed and is not delivered: what the
    object's notification summary is made of."""

    id: str
    purpose: str
    target_kind: str
    target: str
    status: DeliveryStatus  # pending (still tried) or dead
    attempts: int
    first_failure: datetime
    last_error: str | None


@dataclass(frozen=True)
class FailingChannel:
    """One destination that an object's events are failing to reach, e.g. "slack delivery
    to #ml-approvals failing since 10:02, 5 attempts". ``target`` is as its reader may see
    it; ``status`` is ``failing`` while any of its deliveries is still tried, else ``dead``."""

    purpose: str
    target_kind: str
    target: str
    status: str
    failing_since: datetime
    attempts: int
    last_error: str | None


def failing_channels(
    failing: list[FailingDelivery], shown: Callable[[FailingDelivery], str]
) -> list[FailingChannel]:
    """``failing`` by destination (purpose, kind, target), oldest failure first: its
    attempts added up, failing since its first failure, and the newest delivery's error."""
    groups: dict[tuple[str, str, str], list[FailingDelivery]] = {}
    for delivery in sorted(failing, key=lambda d: d.id):
        groups.setdefault((delivery.purpose, delivery.target_kind, delivery.target), []).append(
            delivery
        )
    channels = [
        FailingChannel(
            purpose=purpose,
            target_kind=kind,
            target=shown(found[-1]),
            status="failing"
            if any(d.status is DeliveryStatus.PENDING for d in found)
            else DeliveryStatus.DEAD.value,
            failing_since=min(d.first_failure for d in found),
            attempts=sum(d.attempts for d in found),
            last_error=shown_error(found[-1].last_error, found[-1].target, shown(found[-1])),
        )
        for (purpose, kind, _target), found in groups.items()
    ]
    return sorted(channels, key=lambda c: c.failing_since)


class Reader(StrEnum):
    """Who reads an approval's deliveries, for how much of their targets they see."""

    ADMIN = "admin"  # everything, as in the outbox view
    REQUESTER = "requester"  # the requester or the approval's task token: whom it asked
    APPROVER = "approver"  # another person who may see the approval


def shown_target(
    purpose: str, target_kind: str, target: str, reader: Reader, *, compact: bool = False
) -> str:
    """``target`` as ``reader`` may see it on the approval. The callback URL is on the
    approval already; approvers' addresses are for admins and the requester; what
    subscriptions name (tokens in URLs, people's addresses) is for admins, and shown to the
    others redacted (an apprise URL to scheme, host and digest; admins see its privacy
    form). ``compact`` (the approval's summary) redacts every URL."""
    if target_kind == TargetKind.APPRISE:
        sees = reader is Reader.ADMIN and not compact
        return apprise_urls.shown(target) if sees else apprise_urls.redacted(target)
    if target_kind == TargetKind.SLACK:
        return target
    if target_kind == TargetKind.EMAIL:
        sees = reader is Reader.ADMIN or (
            reader is Reader.REQUESTER and purpose == Purpose.APPROVER
        )
        return target if sees else masked_address(target)
    sees = reader is Reader.ADMIN or purpose == Purpose.CALLBACK
    return target if sees and not compact else destinations.redacted(target)


def shown_error(error: str | None, target: str, shown: str) -> str | None:
    """A delivery's ``error`` as a reader who sees its ``target`` as ``shown`` may read it:
    the real target (an address, a URL) replaced wherever it is quoted."""
    if error is None or shown == target or not target:
        return error
    return re.sub(re.escape(target), shown, error, flags=re.IGNORECASE)


def masked_address(address: str) -> str:
    """``j…@example.com``: which domain, not whom."""
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}…@{domain}"
