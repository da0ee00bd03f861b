"""People: sign-in credentials, sessions, invitations, password resets, named policies, teams
from an identity provider, and what signoff.yaml stacks manage

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 15:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _at(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("team_members", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("source", sa.String(16), server_default="local", nullable=False)
        )
    op.create_table(
        "credentials",
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=True),
        _at("password_changed_at", nullable=True),
        sa.Column("totp_secret", sa.String(255), nullable=True),
        _at("totp_confirmed_at", nullable=True),
        sa.Column("totp_last_step", sa.BigInteger(), nullable=True),
        sa.Column("failed_logins", sa.Integer(), server_default="0", nullable=False),
        _at("locked_until", nullable=True),
        sa.Column("oidc_subject", sa.String(512), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_credentials_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_credentials")),
        sa.UniqueConstraint("oidc_subject", name=op.f("uq_credentials_oidc_subject")),
    )
    op.create_table(
        "recovery_codes",
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        _at("used_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_recovery_codes_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "code_hash", name=op.f("pk_recovery_codes")),
    )
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        _at("created_at"),
        _at("last_seen_at"),
        _at("expires_at"),
        sa.Column("client_addr", sa.String(64), nullable=True),
        sa.Column("user_agent", sa.String(255), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_sessions_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_sessions_token_hash")),
    )
    op.create_index("ix_sessions_user_id", "sessions", ["user_id"])
    op.create_table(
        "invitations",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("teams", JSON, nullable=False),
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("invited_by", sa.String(64), nullable=False),
        _at("created_at"),
        _at("sent_at"),
        _at("expires_at"),
        sa.Column("send_count", sa.Integer(), nullable=False),
        _at("accepted_at", nullable=True),
        sa.Column("user_id", sa.String(32), nullable=True),
        _at("revoked_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_invitations_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitations")),
    )
    op.create_index("ix_invitations_email", "invitations", ["email"])
    op.create_table(
        "password_resets",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("nonce", sa.String(64), nullable=False),
        _at("created_at"),
        _at("expires_at"),
        _at("used_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_password_resets_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_resets")),
    )
    op.create_index("ix_password_resets_user_id", "password_resets", ["user_id"])
    op.create_table(
        "policies",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("spec", JSON, nullable=False),
        _at("created_at"),
        _at("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policies")),
        sa.UniqueConstraint("name", name=op.f("uq_policies_name")),
    )
    op.create_table(
        "managed_objects",
        sa.Column("stack", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("name", sa.String(400), nullable=False),
        sa.Column("object_id", sa.String(64), nullable=False),
        _at("created_at"),
        sa.PrimaryKeyConstraint("stack", "kind", "name", name=op.f("pk_managed_objects")),
    )


def downgrade() -> None:
    for name in (
        "managed_objects",
        "policies",
        "password_resets",
        "invitations",
        "sessions",
        "recovery_codes",
        "credentials",
    ):
        op.drop_table(name)
    with op.batch_alter_table("team_members", schema=None) as batch_op:
        batch_op.drop_column("source")
