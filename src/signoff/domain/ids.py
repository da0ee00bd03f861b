"""Identifiers and secrets.

Public ids are short, URL-safe and typed by a prefix (``ap_``, ``usr_``) so that an id pasted
into a chat says what it names. Event and delivery ids sort by creation time, which keeps
webhook ids and logs in order. Secrets (API keys) carry 256 random bits and are stored only as
a SHA-256 digest: they are high-entropy, so a slow password hash would buy nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case


def _random_chars(count: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(count))


def new_id(prefix: str, length: int = 12) -> str:
    """``prefix_`` + ``length`` random base32 characters (60 bits for the default 12)."""
    return f"{prefix}_{_random_chars(length)}"


def new_sortable_id(prefix: str) -> str:
    """A ULID-like id: 10 characters of milliseconds, then 16 random ones (80 bits)."""
    millis = time.time_ns() // 1_000_000
    stamp = ""
    for _ in range(10):
        millis, digit = divmod(millis, 32)
        stamp = _ALPHABET[digit] + stamp
    return f"{prefix}_{stamp}{_random_chars(16)}"


def new_api_key() -> str:
    return "sok_" + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """The stored form of a high-entropy secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def task_token(secret_key: str, approval_id: str) -> str:
    """The capability for one approval: its id plus an HMAC-SHA256 under the server key.

    Derived rather than random so that an idempotent retry of a create can hand back the same
    token without the server ever storing it. 256 bits of MAC; verified in constant time.
    """
    mac = hmac.new(secret_key.encode(), f"task-token:{approval_id}".encode(), hashlib.sha256)
    return f"sot_{approval_id}.{mac.hexdigest()}"


def approval_id_of_token(secret_key: str, token: str) -> str | None:
    """The approval a task token opens, or None when the token is not genuine."""
    if not token.startswith("sot_") or "." not in token:
        return None
    approval_id = token[4:].split(".", 1)[0]
    expected = task_token(secret_key, approval_id)
    return approval_id if hmac.compare_digest(expected, token) else None
