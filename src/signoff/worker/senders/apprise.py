"""Apprise: a subscription's events as short notifications to any service apprise knows
(SMS through Twilio, Microsoft Teams, Discord, ntfy, email, a JSON endpoint, ...).

Each event becomes a title and a few lines (``message``): what is asked or what happened,
the status, the deadline, and an "Open in signoff" link to the approval's page. Never a
decision link: those are personal, and go only in the email to a known approver.

Apprise is synchronous. Each send runs in a thread of its own, so a service that hangs holds
that thread and its dispatcher slot, and neither the event loop nor the threads the
dispatcher records attempts with; ``timeout`` bounds the wait, and apprise's own socket
timeouts are set to it so the thread ends too. Apprise answers only yes or no: the reason for
a no is what apprise logged (warnings and errors) in that thread during the send.

Before the send, the host the URL names is resolved and every address checked as a webhook's
is (``domain/apprise_urls.hosts``, ``domain/destinations.py``); redirects are not followed.
Unlike the webhook sender, which connects to the address it checked, apprise resolves the
name again itself: a name whose answer changes between the check and apprise's connection
(DNS rebinding) could still reach a refused address in that window. Operators who cannot
accept that give apprise URLs addresses rather than names, or keep signoff's egress
firewalled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import time
from collections.abc import Collection
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from signoff import errors
from signoff.domain import apprise_urls, destinations, events
from signoff.domain.deliveries import AttemptResult, Delivery
from signoff.worker.senders import webhook

MAX_TEXT = 300  # of an approval's body in a notification; SMS are short
_LOGGER = "apprise"


async def send(
    delivery: Delivery,
    *,
    public_url: str,
    timeout: float,
    allowed: Collection[destinations.Network] = (),
) -> AttemptResult:
    """Notify ``delivery.target``; a failure (refused, unreachable, apprise said no, no
    answer within ``timeout``) is a result, never an exception."""
    started = time.perf_counter()
    error: str | None = None
    try:
        async with asyncio.timeout(timeout):
            found = apprise_urls.plugin(delivery.target)
            await _check_hosts(found, urlsplit(delivery.target).scheme, allowed)
            title, body = message(delivery.payload(), public_url)
            error = await _notify(found, title, body, timeout)
    except TimeoutError:
        error = f"no answer within {timeout:g}s"
    except (errors.UnknownAppriseUrl, webhook.DestinationRefused, OSError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    return AttemptResult(
        delivery_id=delivery.id,
        ok=error is None,
        status_code=None,
        error=None if error is None else _scrubbed(error, delivery.target)[:500],
        latency_ms=int((time.perf_counter() - started) * 1000),
        response_excerpt=None,
    )


def message(envelope: dict[str, Any], public_url: str) -> tuple[str, str]:
    """The title and body of the notification for one public event envelope."""
    data, kind = envelope["data"], envelope["type"]
    name = _one_line(str(data.get("title") or envelope["subject"]))
    lines: list[str] = []
    if kind == events.APPROVAL_CREATED:
        title = f"Approval requested: {name}"
        if str(data.get("body", "")).strip():
            lines.append(_shortened(_one_line(str(data["body"])), MAX_TEXT))
        lines.append(f"Status: pending, decide by {_readable(data.get('deadline_at'))}")
    elif kind == events.APPROVAL_DECIDED:
        decision = data.get("decision") or {}
        title = f"{name}: {decision.get('verdict', 'decided')} by {decision.get('user', '?')}"
        if decision.get("comment"):
            lines.append(f"Comment: {_shortened(_one_line(decision['comment']), MAX_TEXT)}")
        lines.append(f"Status: {data.get('status')}")
    elif kind == events.APPROVAL_SETTLED:
        title = f"Approval {data.get('status')}: {name}"
        outcome = data.get("outcome") or {}
        if outcome.get("decided_by"):
            lines.append(f"Decided by {outcome['decided_by']}")
    elif kind in (events.APPROVAL_REMINDER_DUE, events.APPROVAL_ESCALATED):
        title = f"{'Reminder' if kind == events.APPROVAL_REMINDER_DUE else 'Escalated'}: {name}"
        lines.append(f"Status: pending, decide by {_readable(data.get('deadline_at'))}")
    elif kind in (events.APPROVAL_EXPIRED, events.APPROVAL_CANCELED):
        title = f"Approval {kind.rpartition('.')[2]}: {name}"
        if data.get("reason"):
            lines.append(f"Reason: {_shortened(_one_line(str(data['reason'])), MAX_TEXT)}")
        lines.append(f"Status: {data.get('previous_status')} -> {data.get('status')}")
    else:
        title = f"signoff: {kind}"
        lines.append(events.event_type(kind).description)
    if kind.startswith("approval."):
        lines.append(f"Open in signoff: {public_url.rstrip('/')}/approvals/{envelope['subject']}")
    return title, "\n".join(lines)


async def _check_hosts(
    found: apprise_urls.Plugin, scheme: str, allowed: Collection[destinations.Network]
) -> None:
    named = apprise_urls.hosts(found, scheme)
    if named is None:
        raise webhook.DestinationRefused(
            f"{scheme}:// names no network host signoff can check; it sends only to services "
            "on the network"
        )
    for host, port in named:
        await webhook.checked_addresses(host, port or 0, allowed)


async def _notify(found: apprise_urls.Plugin, title: str, body: str, timeout: float) -> str | None:
    """Send in a thread of its own; ``None`` once apprise says it was sent, else the reason."""
    found.socket_connect_timeout = found.socket_read_timeout = timeout
    found.redirects = False  # a redirect would go where no check went
    loop = asyncio.get_running_loop()
    done: asyncio.Future[str | None] = loop.create_future()

    def settle(outcome: str | None) -> None:
        if not done.done():  # it may have been given up on (timeout)
            done.set_result(outcome)

    def run() -> None:
        outcome = _notify_here(found, title, body)
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(settle, outcome)

    threading.Thread(target=run, name="signoff-apprise", daemon=True).start()
    return await done


def _notify_here(found: apprise_urls.Plugin, title: str, body: str) -> str | None:
    said = _ThreadLog()
    logger = logging.getLogger(_LOGGER)
    logger.addHandler(said)
    try:
        sent = bool(found.notify(body=body, title=title))
    except Exception as exc:  # a plugin is third-party code: whatever it raises is a failure
        said.lines.append(f"{type(exc).__name__}: {exc}")
        sent = False
    finally:
        logger.removeHandler(said)
    if sent:
        return None
    return "; ".join(said.lines) or "apprise reported a failure and logged no reason"


class _ThreadLog(logging.Handler):
    """Apprise's warnings and errors logged by the thread that made this, and no other: sends
    run side by side, each in its own thread."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.lines.append(record.getMessage())


def _scrubbed(text: str, url: str) -> str:
    """``text`` without any part of ``url`` that apprise's privacy form hides (tokens,
    passwords, account ids): its messages name hosts, but a service's error may echo what it
    was sent."""
    private = apprise_urls.shown(url, whole=True)
    secrets = {
        piece
        for piece in re.split(r"[/:@?&=,]+", url.partition("://")[2])
        if len(piece) >= 4 and piece not in private
    }
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "…")
    return text


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _shortened(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _readable(value: object) -> str:
    if not isinstance(value, str):
        return "?"
    return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M UTC")
