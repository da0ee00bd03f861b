"""Verifying signoff's webhooks on the receiving side (callbacks, subscriptions).

    event = signoff.webhooks.verify(request.body, request.headers, secret)
    if seen(event_id := request.headers["webhook-id"]): return 200   # at-least-once: dedupe

Checks the Standard Webhooks signature and that the timestamp is within five minutes.
``webhook-signature`` may carry several signatures separated by spaces (signoff signs with its
previous secret too while a rotation lasts); one that verifies is enough. A receiver that
holds more than one secret itself, say while it switches, passes them all:
``verify(body, headers, [new_secret, old_secret])``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from signoff import errors


def verify(
    body: bytes | str, headers: Mapping[str, str], secret: str | Sequence[str]
) -> dict[str, Any]:
    """The event envelope, once one signature checks out with one of the secrets;
    ``errors.InvalidSignature`` if none does."""
    text = body.decode() if isinstance(body, bytes) else body
    lowered = {name.lower(): value for name, value in headers.items()}
    # Only well-formed signatures reach the library, which fails on a malformed one
    # (ValueError) before it looks at the rest.
    signatures = lowered.get("webhook-signature", "").split()
    lowered["webhook-signature"] = " ".join(s for s in signatures if _is_well_formed(s))
    secrets = [secret] if isinstance(secret, str) else list(secret)
    if not secrets:
        raise ValueError("give at least one secret to verify with")
    refusal = WebhookVerificationError("No matching signature found")
    for one in secrets:
        try:
            Webhook(one).verify(text, lowered)
        except WebhookVerificationError as exc:
            refusal = exc
        else:
            event: dict[str, Any] = json.loads(text)
            return event
    raise errors.InvalidSignature(str(refusal)) from refusal


def _is_well_formed(signature: str) -> bool:
    """``v1,<base64>``; signatures of other versions are left to the library to skip."""
    version, comma, encoded = signature.partition(",")
    if not comma or not version or "," in encoded:
        return False
    try:
        base64.b64decode(encoded, validate=True)
    except binascii.Error:
        return False
    return True
