"""People and the credentials that act for them.

A *principal* is whoever a request acts as: a user (a person or a service account) through an
API key, or a workflow holding the task token of exactly one approval.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from signoff import errors


class Role(StrEnum):
    ADMIN = "admin"
    MEMBER = "member"


class Scope(StrEnum):
    """What an API key may be used for; what it can do is also bounded by its user's role."""

    APPROVALS_READ = "approvals:read"  # read, list, wait on approvals one may see
    APPROVALS_WRITE = "approvals:write"  # create approvals; cancel and heartbeat one's own
    APPROVALS_DECIDE = "approvals:decide"  # decide approvals one is an approver of
    ADMIN = "admin"  # people, keys of others, the audit log (admins only)


MEMBER_SCOPES = frozenset({Scope.APPROVALS_READ, Scope.APPROVALS_WRITE, Scope.APPROVALS_DECIDE})


def scopes_of_role(role: Role) -> frozenset[Scope]:
    """Every scope a key of a user with this role may carry."""
    return MEMBER_SCOPES | {Scope.ADMIN} if role is Role.ADMIN else MEMBER_SCOPES


class UserKind(StrEnum):
    PERSON = "person"
    SERVICE = "service"


@dataclass(frozen=True)
class User:
    id: str
    email: str
    name: str
    role: Role
    kind: UserKind
    is_active: bool
    created_at: datetime

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


# What a team may be called (``schemas.TeamCreate`` repeats it: the SDK cannot import this).
TEAM_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
TEAM_NAME_MAX_LENGTH = 100


def is_valid_team_name(name: str) -> bool:
    return len(name) <= TEAM_NAME_MAX_LENGTH and re.fullmatch(TEAM_NAME_PATTERN, name) is not None


@dataclass(frozen=True)
class Team:
    id: str
    name: str
    created_at: datetime
    member_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ApiKey:
    id: str
    user_id: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    scopes: frozenset[Scope]
    expires_at: datetime | None

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: a user, the holder of one approval's task token, or signoff
    itself (at most one of ``user``, ``approval_id`` and ``system`` is set; none: someone not
    signed in, such as a person on the sign-in page)."""

    user: User | None = None
    team_ids: frozenset[str] = frozenset()
    approval_id: str | None = None  # set when acting with a task token
    api_key_id: str | None = None
    system: str | None = None  # "scheduler", "cli": signoff itself or a local operator
    scopes: frozenset[Scope] | None = None  # an API key's; None: not limited by a key
    expires_at: datetime | None = None  # the API key's expiry

    @property
    def is_admin(self) -> bool:
        """Admins acting with a key that allows it, and whoever runs signoff's own commands
        against the database."""
        return self.system is not None or (
            self.user is not None and self.user.is_admin and self.allows(Scope.ADMIN)
        )

    def allows(self, scope: Scope) -> bool:
        return self.scopes is None or scope in self.scopes

    def require_admin(self) -> None:
        if self.system is not None:
            return
        if self.user is None or not self.user.is_admin:
            raise errors.PermissionDenied("this needs an admin")
        self.require(Scope.ADMIN)

    def require(self, scope: Scope) -> None:
        """Refuse a user's request whose API key lacks ``scope`` (task tokens and signoff
        itself are bounded otherwise)."""
        if self.user is not None and not self.allows(scope):
            raise errors.InsufficientScope(
                f"this API key lacks the {scope.value!r} scope", scope=scope.value
            )

    @property
    def actor(self) -> str:
        """How the audit log names this principal."""
        if self.user is not None:
            return f"user:{self.user.id}"
        if self.approval_id is not None:
            return f"token:{self.approval_id}"
        if self.system is not None:
            return f"system:{self.system}"
        return "anonymous"

    def can_open(self, approval_id: str) -> bool:
        return self.user is not None or self.approval_id == approval_id


@dataclass(frozen=True)
class Context:
    """Who asks, and from where: what every service needs for permissions and the audit log."""

    principal: Principal
    request_id: str | None = None
    client_addr: str | None = None

    @property
    def actor(self) -> str:
        return self.principal.actor


def anonymous_context(request_id: str | None = None, client_addr: str | None = None) -> Context:
    """Someone not signed in: signing in, accepting an invitation, resetting a password."""
    return Context(principal=Principal(), request_id=request_id, client_addr=client_addr)


def system_context(name: str) -> Context:
    """The context of signoff's own work (``scheduler``) or of a local operator (``cli``)."""
    return Context(principal=Principal(system=name))
