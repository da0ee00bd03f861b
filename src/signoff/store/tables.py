"""SQLAlchemy mappings of every table. One Alembic chain (``migrations/``) creates them on
SQLite and PostgreSQL alike; ``tests/migrations`` checks that the chain and these mappings
agree."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SQLColumnExpression,
    String,
    Table,
    Text,
    UniqueConstraint,
    literal_column,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql import ColumnElement
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on both databases.

    SQLite has no time zone type, so values are stored as naive UTC text there, which still
    sorts and compares correctly.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("signoff stores aware datetimes only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")
PENDING = text("status = 'pending'")
DEAD = text("status = 'dead'")


def is_pending(status: SQLColumnExpression[str]) -> ColumnElement[bool]:
    """``status = 'pending'`` with the value written into the SQL rather than bound: only then
    can SQLite, and PostgreSQL's generic plans of prepared statements, use the partial indexes
    on pending rows (``PENDING``) instead of scanning and sorting every pending row."""
    return status == literal_column("'pending'")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType}  # noqa: RUF012 (SQLAlchemy reads it as a class attribute)


def table(mapping: type[Base]) -> Table:
    """The Core table behind a mapping: statements on it bind values as parameters and skip
    the ORM's per-row bookkeeping, which matters on the hot paths."""
    return cast(Table, mapping.__table__)


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]


class TeamRow(Base):
    __tablename__ = "teams"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime]


class TeamMemberRow(Base):
    __tablename__ = "team_members"
    __table_args__ = (Index("ix_team_members_user_id", "user_id"),)

    team_id: Mapped[str] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    # "local" (an admin, an invitation or signoff.yaml added it) or "oidc" (the identity
    # provider's groups claim did; the next sign-in may take it away again).
    source: Mapped[str] = mapped_column(String(16), server_default="local")


class CredentialRow(Base):
    """How a person signs in: password, authenticator app, identity provider subject, and the
    failed attempts that lock the account for a while. Kept apart from ``users`` so the row
    every API request reads stays small."""

    __tablename__ = "credentials"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    password_hash: Mapped[str | None] = mapped_column(String(255))
    password_changed_at: Mapped[datetime | None]
    totp_secret: Mapped[str | None] = mapped_column(String(255))  # sealed with the server key
    totp_confirmed_at: Mapped[datetime | None]
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)  # no code is used twice
    failed_logins: Mapped[int] = mapped_column(Integer, server_default="0")
    locked_until: Mapped[datetime | None]
    oidc_subject: Mapped[str | None] = mapped_column(String(512), unique=True)


class RecoveryCodeRow(Base):
    __tablename__ = "recovery_codes"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    used_at: Mapped[datetime | None]


class SessionRow(Base):
    """A browser's sign-in. The cookie holds a secret whose digest is ``token_hash``."""

    __tablename__ = "sessions"
    __table_args__ = (Index("ix_sessions_user_id", "user_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    stage: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    client_addr: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(255))


class InvitationRow(Base):
    __tablename__ = "invitations"
    __table_args__ = (Index("ix_invitations_email", "email"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(16))
    teams: Mapped[list[str]] = mapped_column(JSONType)
    nonce: Mapped[str] = mapped_column(String(64))  # changes on re-send: old links stop working
    invited_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    send_count: Mapped[int] = mapped_column(Integer)
    accepted_at: Mapped[datetime | None]
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    revoked_at: Mapped[datetime | None]


class PasswordResetRow(Base):
    __tablename__ = "password_resets"
    __table_args__ = (Index("ix_password_resets_user_id", "user_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    nonce: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class PolicyRow(Base):
    """A named, reusable approval policy (``policy="prod-promotion"``)."""

    __tablename__ = "policies"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text)
    spec: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ManagedObjectRow(Base):
    """What a ``signoff.yaml`` stack created, so that apply and destroy touch nothing else."""

    __tablename__ = "managed_objects"

    stack: Mapped[str] = mapped_column(String(100), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(400), primary_key=True)
    object_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]


class ApiKeyRow(Base):
    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_user_id", "user_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    scopes: Mapped[list[str]] = mapped_column(JSONType)
    expires_at: Mapped[datetime | None]


class ApprovalRow(Base):
    __tablename__ = "approvals"
    __table_args__ = (
        UniqueConstraint("requester_id", "idempotency_key"),
        Index(
            "ix_approvals_due_at_pending", "due_at", sqlite_where=PENDING, postgresql_where=PENDING
        ),
        Index("ix_approvals_created_at_id", "created_at", "id"),
        Index("ix_approvals_requester_id_created_at", "requester_id", "created_at"),
        Index("ix_approvals_status_created_at", "status", "created_at"),
        # The inbox: pages by deadline, within one status or across all (migration 0008);
        # with the requester, so "may this person see it?" reads no table row.
        Index("ix_approvals_status_deadline_at_id", "status", "deadline_at", "id", "requester_id"),
        Index("ix_approvals_deadline_at_id", "deadline_at", "id", "requester_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    context: Mapped[dict[str, Any]]
    labels: Mapped[list[str]] = mapped_column(JSONType)
    requester_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    approvers: Mapped[list[dict[str, str]]] = mapped_column(JSONType)
    policy: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16))
    on_timeout: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    deadline_at: Mapped[datetime]
    heartbeat_timeout_seconds: Mapped[int | None] = mapped_column(Integer)
    heartbeat_at: Mapped[datetime | None]
    due_at: Mapped[datetime]
    callback_url: Mapped[str | None] = mapped_column(String(2048))
    outcome: Mapped[dict[str, Any] | None]
    settled_at: Mapped[datetime | None]
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str | None] = mapped_column(String(64))


class ApprovalApproverRow(Base):
    """Who may decide, one row per user or team, so "what can I decide?" is an index scan."""

    __tablename__ = "approval_approvers"
    __table_args__ = (Index("ix_approval_approvers_ref", "kind", "ref_id", "approval_id"),)

    approval_id: Mapped[str] = mapped_column(
        ForeignKey("approvals.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    ref_id: Mapped[str] = mapped_column(String(32), primary_key=True)


class ApprovalLabelRow(Base):
    __tablename__ = "approval_labels"
    __table_args__ = (Index("ix_approval_labels_label", "label", "approval_id"),)

    approval_id: Mapped[str] = mapped_column(
        ForeignKey("approvals.id", ondelete="CASCADE"), primary_key=True
    )
    label: Mapped[str] = mapped_column(String(100), primary_key=True)


class DecisionRow(Base):
    __tablename__ = "decisions"
    __table_args__ = (UniqueConstraint("approval_id", "user_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    approval_id: Mapped[str] = mapped_column(ForeignKey("approvals.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    user_email: Mapped[str] = mapped_column(String(320))
    verdict: Mapped[str] = mapped_column(String(8))
    comment: Mapped[str] = mapped_column(Text)
    form: Mapped[dict[str, Any] | None]
    channel: Mapped[str] = mapped_column(String(16))
    decided_at: Mapped[datetime]


SCHEDULED = text("state = 'scheduled'")


class ApprovalTimerRow(Base):
    """An approval's reminders and escalation (``domain/reminders.py``), one row per moment.
    The scheduler finds due ones through the partial index of scheduled timers, which stays
    small: a timer leaves it when it fires, or when its approval settles (skipped)."""

    __tablename__ = "approval_timers"
    __table_args__ = (
        Index(
            "ix_approval_timers_due_at_scheduled",
            "due_at",
            sqlite_where=SCHEDULED,
            postgresql_where=SCHEDULED,
        ),
    )

    approval_id: Mapped[str] = mapped_column(
        ForeignKey("approvals.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime]
    approvers: Mapped[list[dict[str, str]]] = mapped_column(JSONType)  # an escalation's
    state: Mapped[str] = mapped_column(String(16))
    done_at: Mapped[datetime | None]


class EventRow(Base):
    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_subject", "subject"),
        Index("ix_events_type_occurred_at", "type", "occurred_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]]
    occurred_at: Mapped[datetime]
    version: Mapped[int] = mapped_column(Integer, server_default="1")  # of ``data``


class SubscriptionRow(Base):
    """Where matching events go (``domain/subscriptions.py``). ``target`` is a URL or a
    channel (a JSON string), or the email recipients (a JSON list)."""

    __tablename__ = "subscriptions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    target: Mapped[Any] = mapped_column(JSONType)
    filter: Mapped[dict[str, Any]]
    enabled: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class DeliveryRow(Base):
    __tablename__ = "deliveries"
    __table_args__ = (
        Index(
            "ix_deliveries_next_attempt_at_pending",
            "next_attempt_at",
            sqlite_where=PENDING,
            postgresql_where=PENDING,
        ),
        Index("ix_deliveries_event_id", "event_id"),
        Index("ix_deliveries_subscription_id", "subscription_id"),
        # Dead letters, newest first: the deliveries view's ``status=dead`` and the metric's
        # count read these instead of the whole table.
        Index("ix_deliveries_id_dead", "id", sqlite_where=DEAD, postgresql_where=DEAD),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    target_kind: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(2048))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    created_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    # Set for a subscription's deliveries; a deleted subscription's go out all the same.
    subscription_id: Mapped[str | None] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="SET NULL")
    )
    purpose: Mapped[str] = mapped_column(String(16))  # a ``deliveries.Purpose`` value


class DeliveryAttemptRow(Base):
    __tablename__ = "delivery_attempts"
    __table_args__ = (Index("ix_delivery_attempts_delivery_id", "delivery_id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    delivery_id: Mapped[str] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"))
    attempted_at: Mapped[datetime]
    ok: Mapped[bool] = mapped_column(Boolean)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    latency_ms: Mapped[int] = mapped_column(Integer)
    response_excerpt: Mapped[str | None] = mapped_column(Text)


class AuditEntryRow(Base):
    __tablename__ = "audit_entries"
    __table_args__ = (
        Index("ix_audit_entries_object", "object_type", "object_id"),
        Index("ix_audit_entries_at", "at"),
    )

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(64))
    before: Mapped[dict[str, Any] | None]
    after: Mapped[dict[str, Any] | None]
    request_id: Mapped[str | None] = mapped_column(String(64))
    client_addr: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHeadRow(Base):
    """The single row that holds the chain's newest entry; locked to append."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class ServerSecretRow(Base):
    """Secrets the server generates for itself on first start (signing keys)."""

    __tablename__ = "server_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))


class SlackMessageRow(Base):
    """A Slack message posted for an approval (``worker/senders/slack.py``): kept to update it
    as the approval is decided. ``channel`` is the id Slack answered with; ``target`` the
    channel as the subscription names it; ``delivery_id`` the delivery that posted it, so a
    retry of that delivery never posts again."""

    __tablename__ = "slack_messages"
    __table_args__ = (
        UniqueConstraint("channel", "ts"),
        Index("ix_slack_messages_approval_id", "approval_id"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    approval_id: Mapped[str] = mapped_column(ForeignKey("approvals.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(32))
    ts: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(100))
    delivery_id: Mapped[str] = mapped_column(String(40), unique=True)
    posted_at: Mapped[datetime]


class SlackUserRow(Base):
    """Which signoff user a Slack user is: set by an admin (``source`` explicit), or found by
    the Slack profile's email and kept (``source`` email). An explicit one wins."""

    __tablename__ = "slack_users"
    __table_args__ = (Index("ix_slack_users_user_id", "user_id"),)

    slack_user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
