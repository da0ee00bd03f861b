"""Identifiers and secrets.

Public ids are short, URL-safe and typed by a prefix (``ap_``, ``usr_``) so that an id pasted
into a chat says what it names. Event and delivery ids sort by creation time, which keeps
webhook ids and logs in order. Secrets (API keys) carry 256 random bits and are stored only as
a SHA-256 digest: they are high-entropy, so a slow password hash would buy nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from datetime import datetime
from typing import NamedTuple

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case


def _random_chars(count: int) -> str:
    """``count`` random base32 characters, 5 bits each, from one read of the OS's CSPRNG."""
    return _base32(int.from_bytes(secrets.token_bytes((count * 5 + 7) // 8)), count)


def new_id(prefix: str, length: int = 12) -> str:
    """``prefix_`` + ``length`` random base32 characters (60 bits for the default 12)."""
    return f"{prefix}_{_random_chars(length)}"


def new_sortable_id(prefix: str) -> str:
    """A monotonic ULID-like id: 10 characters of milliseconds, then 16 random ones (80 bits).

    Ids made by one process sort in the order they were made, also within one millisecond
    (the events of one transaction): there the random part of the previous id is incremented.
    """
    global _last_stamp
    with _sortable_lock:
        millis = time.time_ns() // 1_000_000
        previous_millis, previous_random = _last_stamp
        if millis <= previous_millis and previous_random + 1 < 1 << 80:
            millis, random = previous_millis, previous_random + 1
        else:
            random = int.from_bytes(secrets.token_bytes(10))
        _last_stamp = (millis, random)
    return f"{prefix}_{_base32(millis, 10)}{_base32(random, 16)}"


def _base32(number: int, length: int) -> str:
    return "".join(_ALPHABET[(number >> (5 * i)) & 31] for i in reversed(range(length)))


_sortable_lock = threading.Lock()
_last_stamp = (0, 0)  # (milliseconds, random part) of the last sortable id


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


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


def link_token(secret_key: str, purpose: str, object_id: str, nonce: str) -> str:
    """The secret part of an emailed link (an invitation, a password reset): the object's id
    and an HMAC over purpose, id and the object's current nonce. Changing the nonce (a re-sent
    invitation, a used reset) makes every earlier link for the object stop working."""
    mac = hmac.new(secret_key.encode(), f"{purpose}:{object_id}:{nonce}".encode(), hashlib.sha256)
    return f"{object_id}.{mac.hexdigest()}"


def link_object_id(token: str) -> str | None:
    """The id a link token names, before it is checked against the object's nonce."""
    object_id, dot, mac = token.partition(".")
    return object_id if dot and len(mac) == 64 and object_id.isascii() else None


def is_genuine_link(secret_key: str, purpose: str, token: str, nonce: str) -> bool:
    object_id = link_object_id(token)
    if object_id is None:
        return False
    return hmac.compare_digest(link_token(secret_key, purpose, object_id, nonce), token)


class DecisionLink(NamedTuple):
    """What a decision link says: whose decision on which approval, and which verdict."""

    approval_id: str
    user_id: str
    verdict: str


_DECISION_LINK = re.compile(r"([a-z]+_[0-9a-z]+)\.([a-z]+_[0-9a-z]+)\.([a-z]+)\.([0-9a-f]{64})")


def decision_link_token(
    secret_key: str, approval_id: str, user_id: str, verdict: str, expires_at: datetime
) -> str:
    """The secret part of an emailed decision link (``/decide/<token>``): the approval, the
    approver and the verdict in the clear, and an HMAC under the server key over them and the
    second the link expires (the approval's deadline). Nothing is stored: the approval's row
    has all it takes to check one, and a decision per approver is unique, which makes the link
    single-use."""
    expires = int(expires_at.timestamp())
    message = f"decision-link:{approval_id}:{user_id}:{verdict}:{expires}"
    mac = hmac.new(secret_key.encode(), message.encode(), hashlib.sha256)
    return f"{approval_id}.{user_id}.{verdict}.{mac.hexdigest()}"


def decision_link_of(token: str) -> DecisionLink | None:
    """What a decision link token names, before its MAC is checked; None when it has not
    even the shape of one."""
    found = _DECISION_LINK.fullmatch(token)
    return DecisionLink(*found.groups()[:3]) if found else None


def is_genuine_decision_link(secret_key: str, token: str, expires_at: datetime) -> bool:
    """Whether ``token`` was made under ``secret_key`` for what it names and for a link that
    expires at ``expires_at``, compared in constant time."""
    link = decision_link_of(token)
    if link is None:
        return False
    expected = decision_link_token(secret_key, *link, expires_at=expires_at)
    return hmac.compare_digest(expected, token)
