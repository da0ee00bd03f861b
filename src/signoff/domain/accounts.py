"""Signing in to the portal: sessions, invitations, password resets and lockout.

A *session* is a browser's sign-in, in one of three stages: ``mfa`` (the password was right,
the second factor is still owed), ``enrol`` (signed in, but must set up an authenticator app
before anything else) and ``active``. Each stage change issues a new session secret, so a
secret seen before sign-in (session fixation) is worth nothing after it. A session ends at
its absolute expiry, after ``idle`` without use, at sign-out, or at once when its user is
disabled or resets their password.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

INVITE_LINK = "invitation"
RESET_LINK = "password-reset"
LAST_SEEN_RESOLUTION = timedelta(minutes=1)


class Stage(StrEnum):
    MFA = "mfa"
    ENROL = "enrol"
    ACTIVE = "active"


class Method(StrEnum):
    PASSWORD = "password"  # noqa: S105 (the name of a sign-in method)
    INVITATION = "invitation"
    OIDC = "oidc"


@dataclass(frozen=True)
class Session:
    id: str
    user_id: str
    stage: Stage
    method: Method
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime

    def is_live(self, now: datetime, idle: timedelta) -> bool:
        return now < self.expires_at and now - self.last_seen_at < idle


@dataclass(frozen=True)
class Credentials:
    user_id: str
    password_hash: str | None
    totp_secret: str | None  # sealed
    totp_confirmed_at: datetime | None
    totp_last_step: int | None
    failed_logins: int
    locked_until: datetime | None

    @property
    def has_totp(self) -> bool:
        return self.totp_secret is not None and self.totp_confirmed_at is not None

    def is_locked(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until


@dataclass(frozen=True)
class SignInFacts:
    """What an admin sees of a person's sign-in: whether an authenticator app is set up, and
    when they were last seen by a session still kept (None: no such session)."""

    has_totp: bool = False
    last_seen_at: datetime | None = None


@dataclass(frozen=True)
class Lockout:
    """After ``max_failures`` wrong passwords or codes in a row, sign-in is refused for
    ``duration``; each further failure while locked does not extend it, so an attacker cannot
    keep a person out for longer than one period after they stop."""

    max_failures: int
    duration: timedelta

    def locked_until(self, failures: int, now: datetime) -> datetime | None:
        return now + self.duration if failures >= self.max_failures else None


@dataclass(frozen=True)
class Invitation:
    id: str
    email: str
    role: str
    teams: list[str]
    invited_by: str
    created_at: datetime
    sent_at: datetime
    expires_at: datetime
    send_count: int
    accepted_at: datetime | None
    user_id: str | None
    revoked_at: datetime | None

    def status(self, now: datetime) -> str:
        if self.accepted_at is not None:
            return "accepted"
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if now >= self.expires_at else "pending"


@dataclass(frozen=True)
class PasswordReset:
    id: str
    user_id: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None

    def is_usable(self, now: datetime) -> bool:
        return self.used_at is None and now < self.expires_at
