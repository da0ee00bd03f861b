"""People and the credentials that act for them.

A *principal* is whoever a request acts as: a user (a person or a service account) through an
API key, or a workflow holding the task token of exactly one approval.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    MEMBER = "member"


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

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: a user, the holder of one approval's task token, or signoff
    itself (exactly one of ``user``, ``approval_id`` and ``system`` is set)."""

    user: User | None = None
    team_ids: frozenset[str] = frozenset()
    approval_id: str | None = None  # set when acting with a task token
    api_key_id: str | None = None
    system: str | None = None  # "scheduler", "cli": signoff itself or a local operator

    @property
    def is_admin(self) -> bool:
        """Admins, and whoever runs signoff's own commands against the database."""
        return self.system is not None or (self.user is not None and self.user.is_admin)

    @property
    def actor(self) -> str:
        """How the audit log names this principal."""
        if self.user is not None:
            return f"user:{self.user.id}"
        if self.approval_id is not None:
            return f"token:{self.approval_id}"
        return f"system:{self.system}"

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


def system_context(name: str) -> Context:
    """The context of signoff's own work (``scheduler``) or of a local operator (``cli``)."""
    return Context(principal=Principal(system=name))
