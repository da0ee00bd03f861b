"""Subscriptions: where events go beyond an approval's own callback.

A subscription names a target (a webhook URL, email recipients, a Slack channel or an apprise
URL) and a filter over the event envelope (``domain/filters.py``). When an event is written,
every enabled subscription whose filter matches its public envelope gets deliveries in the
same transaction: one per recipient for email, one otherwise. Internal event types
(``domain/events.py``) never match, whatever the filter says.

A webhook target must pass the same address rules as callbacks (``domain/destinations.py``)
when it is written, and again, resolved, at every send. An apprise target must be a URL
apprise recognises (``domain/apprise_urls.py``), and the host its service connects to is held
to the same rules at every send.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from signoff import errors
from signoff.domain import apprise_urls, destinations, events, filters
from signoff.domain.deliveries import TargetKind
from signoff.domain.events import Event

NAME_PATTERN = r"[a-z0-9][a-z0-9._-]{0,99}"  # schemas.SubscriptionName says the same
MAX_URL = 2048
MAX_RECIPIENTS = 50
_NAME = re.compile(NAME_PATTERN)
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_SLACK_CHANNEL = re.compile(r"#[a-z0-9][a-z0-9._-]{0,79}|[CGD][A-Z0-9]{8,20}")


class Kind(StrEnum):
    WEBHOOK = "webhook"
    EMAIL = "email"
    SLACK = "slack"
    APPRISE = "apprise"


Target = str | tuple[str, ...]  # a URL or a channel; email: the recipients


@dataclass(frozen=True)
class Subscription:
    id: str
    name: str
    kind: Kind
    target: Target
    filter: dict[str, Any]
    enabled: bool
    created_at: datetime
    updated_at: datetime

    def destinations(self) -> list[tuple[TargetKind, str]]:
        """Where one matching event goes: each recipient, or the one target."""
        kind = TargetKind(self.kind.value)
        if isinstance(self.target, tuple):
            return [(kind, recipient) for recipient in self.target]
        return [(kind, self.target)]

    def as_json(self) -> dict[str, Any]:
        """The subscription as the API shows it (to admins: the target in full, but for an
        apprise URL, a bundle of credentials, shown in its privacy form)."""
        target: str | list[str] = (
            list(self.target) if isinstance(self.target, tuple) else self.target
        )
        if self.kind is Kind.APPRISE:
            target = shown_target(self.kind, self.target)
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind.value,
            "target": target,
            "filter": self.filter,
            "enabled": self.enabled,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }

    def summary(self) -> dict[str, Any]:
        """What audit entries and plans show: URLs redacted, as they may carry tokens."""
        return {
            "name": self.name,
            "kind": self.kind.value,
            "target": shown_target(self.kind, self.target),
            "filter": self.filter,
            "enabled": self.enabled,
        }


def deliveries_for(
    event: Event, subscriptions: Iterable[Subscription]
) -> list[tuple[Subscription, TargetKind, str]]:
    """Each (subscription, kind, target) that ``event`` must be delivered to."""
    enabled = [subscription for subscription in subscriptions if subscription.enabled]
    if not enabled or event.is_internal:
        return []
    envelope = event.public_envelope()
    return [
        (subscription, kind, target)
        for subscription in enabled
        if filters.matches(subscription.filter, envelope)
        for kind, target in subscription.destinations()
    ]


def check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise errors.InvalidInput(
            f"subscription name {name!r} is not a lower-case slug: 1 to 100 of a-z, 0-9, '.', "
            "'_' and '-', starting with a letter or digit",
            field="name",
        )


def checked_target(
    kind: Kind, target: str | Collection[str], allowed: Collection[destinations.Network]
) -> Target:
    """``target`` as stored (``normalized_target``), and a URL's host not visibly private
    unless ``allowed`` (the ``SIGNOFF_WEBHOOK_ALLOWED_NETWORKS``) has it."""
    normalized = normalized_target(kind, target)
    if isinstance(normalized, str) and kind is not Kind.SLACK:
        destinations.check_url(normalized, allowed, field="target")
    return normalized


def normalized_target(kind: Kind, target: str | Collection[str]) -> Target:
    """``target`` as stored, once its shape suits ``kind``; ``InvalidInput`` on ``target``."""
    if kind is Kind.EMAIL:
        return _recipients([target] if isinstance(target, str) else list(target))
    if not isinstance(target, str):
        raise errors.InvalidInput(f"a {kind} target is one string, not a list", field="target")
    target = target.strip()
    if kind is Kind.SLACK:
        if not _SLACK_CHANNEL.fullmatch(target):
            raise errors.InvalidInput(
                f"{target!r} is not a Slack channel: '#name' (lower case) or an id like C0123ABCD",
                field="target",
            )
        return target
    _check_url(kind, target)
    return target


def _check_url(kind: Kind, url: str) -> None:
    parts = urlsplit(url)
    if len(url) > MAX_URL:
        raise errors.InvalidInput(f"a URL is at most {MAX_URL} characters", field="target")
    if kind is Kind.WEBHOOK and (parts.scheme not in ("http", "https") or not parts.hostname):
        raise errors.InvalidInput(f"{url!r} is not an http(s) URL", field="target")
    if kind is Kind.APPRISE:
        apprise_urls.check(url)


def _recipients(addresses: list[str]) -> tuple[str, ...]:
    if not 1 <= len(addresses) <= MAX_RECIPIENTS:
        raise errors.InvalidInput(
            f"an email target lists 1 to {MAX_RECIPIENTS} addresses", field="target"
        )
    found: dict[str, None] = {}
    for address in addresses:
        address = address.strip().lower()
        if not _EMAIL.fullmatch(address) or len(address) > 320:
            raise errors.InvalidInput(f"{address!r} is not an email address", field="target")
        found[address] = None
    return tuple(found)


def check_filter(pattern: Any) -> None:
    """A valid pattern whose exact ``type`` values are public types of the catalogue: a typo
    would otherwise match nothing, silently, and an internal type would never arrive."""
    filters.check(pattern, field="filter")
    wanted = pattern.get("type")
    for index, name in enumerate(wanted if isinstance(wanted, list) else []):
        if not isinstance(name, str):
            continue
        where = f"filter.type[{index}]"
        known = events.CATALOGUE.get(name)
        if known is None:
            types = ", ".join(events.public_types())
            raise errors.InvalidInput(
                f"{where}: {name!r} is not an event type; the types are {types}", field=where
            )
        if known.internal:
            raise errors.InvalidInput(
                f"{where}: {name} is internal to signoff: subscriptions never receive it",
                field=where,
            )


def shown_target(kind: Kind, target: Target) -> str | list[str]:
    if isinstance(target, tuple):
        return list(target)
    if kind is Kind.APPRISE:
        return apprise_urls.shown(target)
    return target if kind is Kind.SLACK else destinations.redacted(target)
