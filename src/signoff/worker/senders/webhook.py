"""Webhooks signed per the Standard Webhooks spec: an approval's callback and subscriptions'
webhooks alike (the body is the delivery's envelope, ``Delivery.payload``).

Headers ``webhook-id`` (the delivery's id: the same on every retry, so receivers deduplicate
by it), ``webhook-timestamp`` (seconds) and ``webhook-signature`` (``v1,<base64 HMAC-SHA256 of
"id.timestamp.body">``, once per signing secret, separated by spaces: during a rotation the
current and the previous secret both sign, and a receiver holding either verifies). Any 2xx
answer counts as delivered.

Before sending, the receiver's name is resolved and every address it has is checked
(``domain/destinations.py``); the request then goes to the checked address, with the name in
``Host`` and in TLS's SNI and certificate check, so the name cannot resolve elsewhere between
the check and the connection. Redirects are not followed.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Collection
from datetime import UTC, datetime
from ipaddress import ip_address
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook

from signoff.domain import destinations
from signoff.domain.deliveries import AttemptResult, Delivery

EXCERPT = 1024
USER_AGENT = "signoff-webhooks/1"


def signed_request(delivery: Delivery, secrets: tuple[str, ...]) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one attempt, signed with each of ``secrets``."""
    body = json.dumps(delivery.payload(), separators=(",", ":"), sort_keys=True)
    sent_at = datetime.now(UTC)
    signatures = " ".join(Webhook(secret).sign(delivery.id, sent_at, body) for secret in secrets)
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": delivery.id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signatures,
    }
    return body.encode(), headers


class DestinationRefused(Exception):
    """The receiver's address is not one signoff may send to."""


async def send(
    http: httpx.AsyncClient,
    delivery: Delivery,
    secrets: tuple[str, ...],
    timeout: float,
    allowed: Collection[destinations.Network] = (),
) -> AttemptResult:
    """POST the event, signed with each of ``secrets``; ``timeout`` bounds the whole exchange,
    not each phase of it."""
    body, headers = signed_request(delivery, secrets)
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            url, host, extensions = await pinned(delivery.target, allowed)
            response = await http.post(
                url, content=body, headers=headers | {"host": host}, extensions=extensions
            )
    except (httpx.HTTPError, TimeoutError, DestinationRefused, OSError) as exc:
        return AttemptResult(
            delivery_id=delivery.id,
            ok=False,
            status_code=None,
            error=f"{type(exc).__name__}: {exc}"[:500],
            latency_ms=_millis_since(started),
            response_excerpt=None,
        )
    return AttemptResult(
        delivery_id=delivery.id,
        ok=response.is_success,
        status_code=response.status_code,
        error=None if response.is_success else f"HTTP {response.status_code}",
        latency_ms=_millis_since(started),
        response_excerpt=response.text[:EXCERPT] or None,
    )


async def pinned(
    target: str, allowed: Collection[destinations.Network]
) -> tuple[httpx.URL, str, dict[str, Any]]:
    """The URL with its host replaced by a checked address, the ``Host`` header, and the
    request extensions that keep TLS verifying the name."""
    url = httpx.URL(target)
    if url.scheme not in ("http", "https") or not url.host:
        raise DestinationRefused(f"{target!r} is not an http(s) URL")
    port = url.port or (443 if url.scheme == "https" else 80)
    addresses = await checked_addresses(url.host, port, allowed)
    host = url.host if url.port is None else f"{url.host}:{url.port}"
    if ":" in url.host:  # an IPv6 literal keeps its brackets in Host
        host = f"[{url.host}]" if url.port is None else f"[{url.host}]:{url.port}"
    extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
    return url.copy_with(host=str(addresses[0])), host, extensions


async def checked_addresses(
    host: str, port: int, allowed: Collection[destinations.Network]
) -> list[destinations.Address]:
    """Every address ``host`` resolves to, once each is allowed; ``DestinationRefused``
    otherwise (``OSError`` when it does not resolve)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = [ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not addresses:
        raise DestinationRefused(f"{host} has no address")
    for address in addresses:
        if not destinations.is_allowed(address, allowed):
            raise DestinationRefused(destinations.refusal(host, address))
    return addresses


def _millis_since(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
