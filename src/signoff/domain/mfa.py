"""The second factor: TOTP (RFC 6238) authenticator apps, and recovery codes for when the phone
is lost.

A TOTP secret must be readable to check codes, so it is stored sealed (AES-256-GCM under a key
derived from the server's secret key): with ``SIGNOFF_SECRET_KEY`` kept outside the database,
a copy of the database alone yields no second factors. Until it is confirmed, the secret is
not stored at all: it is derived from the enrolling session.
Each time step is accepted once per user (``last_step``), so a code seen over a shoulder or
in a proxy log cannot be replayed. Recovery codes are random, shown once, stored as digests,
and each works once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

import pyotp
import segno
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

STEP_SECONDS = 30
ISSUER = "signoff"
RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"  # no 0/o, 1/l/i to misread


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, account: str, issuer: str = ISSUER) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=issuer)


def qr_svg(uri: str) -> str:
    """The URI as an inline SVG QR code: rendered on the server, no script, no image fetch."""
    return str(segno.make(uri, error="m").svg_inline(scale=5, dark="#000", light="#fff"))


def accepted_step(
    secret: str, code: str, *, last_step: int | None, now: float | None = None
) -> int | None:
    """The time step ``code`` belongs to when it is valid now (one step of clock drift either
    way) and newer than ``last_step``; None otherwise."""
    code = "".join(code.split())
    if not (code.isdigit() and len(code) == 6):
        return None
    now = time.time() if now is None else now
    totp = pyotp.TOTP(secret)
    current = int(now // STEP_SECONDS)
    for step in (current, current - 1, current + 1):
        if (last_step is None or step > last_step) and secrets.compare_digest(
            totp.at(step * STEP_SECONDS), code
        ):
            return step
    return None


def new_recovery_codes() -> list[str]:
    """Ten codes of 10 characters (about 49 bits each), written ``xxxxx-xxxxx``."""
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def recovery_digest(secret_key: str, user_id: str, code: str) -> str:
    """Digest of a user's recovery code as typed (case, spaces and dashes do not matter): an
    HMAC under the server key, so a copy of the database is no list of codes to try offline
    (about 49 bits each), and one user's digests say nothing about another's."""
    typed = "".join(ch for ch in code.lower() if ch.isalnum())
    mac = hmac.new(secret_key.encode(), f"recovery:{user_id}:{typed}".encode(), hashlib.sha256)
    return mac.hexdigest()


def enrolment_secret(secret_key: str, session_id: str) -> str:
    """The TOTP secret offered while enrolling in one session (160 bits, base32): derived
    rather than stored until it is confirmed."""
    mac = hmac.new(secret_key.encode(), f"totp-enrol:{session_id}".encode(), hashlib.sha256)
    return base64.b32encode(mac.digest()[:20]).decode()


def looks_like_recovery_code(code: str) -> bool:
    return len("".join(ch for ch in code if ch.isalnum())) == 10


def seal(secret_key: str, plaintext: str) -> str:
    nonce = secrets.token_bytes(12)
    sealed = AESGCM(_sealing_key(secret_key)).encrypt(nonce, plaintext.encode(), b"totp")
    return "v1." + base64.urlsafe_b64encode(nonce + sealed).decode()


def unseal(secret_key: str, sealed: str) -> str | None:
    """The plaintext, or None when the value was not sealed under this key."""
    if not sealed.startswith("v1."):
        return None
    raw = base64.urlsafe_b64decode(sealed[3:])
    try:
        return AESGCM(_sealing_key(secret_key)).decrypt(raw[:12], raw[12:], b"totp").decode()
    except InvalidTag:
        return None


def _sealing_key(secret_key: str) -> bytes:
    return hashlib.sha256(f"signoff totp sealing:{secret_key}".encode()).digest()
