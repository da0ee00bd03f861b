"""Verifying signoff's webhooks on the receiving side (callbacks, subscriptions).

    event = signoff.webhooks.verify(request.body, request.headers, secret)
    if seen(event_id := request.headers["webhook-id"]): return 200   # at-least-once: dedupe

Checks the Standard Webhooks signature and that the timestamp is within five minutes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from signoff import errors


def verify(body: bytes | str, headers: Mapping[str, str], secret: str) -> dict[str, Any]:
    """The event envelope, once the signature checks out; ``errors.InvalidSignature`` if not."""
    text = body.decode() if isinstance(body, bytes) else body
    lowered = {name.lower(): value for name, value in headers.items()}
    try:
        Webhook(secret).verify(text, lowered)
    except WebhookVerificationError as exc:
        raise errors.InvalidSignature(str(exc)) from exc
    event: dict[str, Any] = json.loads(text)
    return event
