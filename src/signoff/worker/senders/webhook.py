"""Webhooks signed per the Standard Webhooks spec.

Headers ``webhook-id`` (the delivery's id: the same on every retry, so receivers deduplicate
by it), ``webhook-timestamp`` (seconds) and ``webhook-signature`` (``v1,<base64 HMAC-SHA256 of
"id.timestamp.body">``). Any 2xx answer counts as delivered.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime

import httpx
from standardwebhooks.webhooks import Webhook

from signoff.domain.deliveries import AttemptResult, Delivery

EXCERPT = 1024
USER_AGENT = "signoff-webhooks/1"


def signed_request(delivery: Delivery, secret: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(delivery.event.envelope(), separators=(",", ":"), sort_keys=True)
    sent_at = datetime.now(UTC)
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": delivery.id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": Webhook(secret).sign(delivery.id, sent_at, body),
    }
    return body.encode(), headers


async def send(
    http: httpx.AsyncClient, delivery: Delivery, secret: str, timeout: float
) -> AttemptResult:
    """POST the event; ``timeout`` bounds the whole exchange, not each phase of it."""
    body, headers = signed_request(delivery, secret)
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            response = await http.post(delivery.target, content=body, headers=headers)
    except (httpx.HTTPError, TimeoutError) as exc:
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


def _millis_since(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
