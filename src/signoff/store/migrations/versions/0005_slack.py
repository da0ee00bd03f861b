"""Slack: the messages posted for approvals (to update them once decided), and which Slack
user is which signoff user

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 18:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slack_messages",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("approval_id", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("ts", sa.String(32), nullable=False),
        sa.Column("target", sa.String(100), nullable=False),
        sa.Column("delivery_id", sa.String(40), nullable=False),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["approval_id"],
            ["approvals.id"],
            name=op.f("fk_slack_messages_approval_id_approvals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slack_messages")),
        sa.UniqueConstraint("channel", "ts", name=op.f("uq_slack_messages_channel_ts")),
        sa.UniqueConstraint("delivery_id", name=op.f("uq_slack_messages_delivery_id")),
    )
    op.create_index("ix_slack_messages_approval_id", "slack_messages", ["approval_id"])
    op.create_table(
        "slack_users",
        sa.Column("slack_user_id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_slack_users_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("slack_user_id", name=op.f("pk_slack_users")),
    )
    op.create_index("ix_slack_users_user_id", "slack_users", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_slack_users_user_id", table_name="slack_users")
    op.drop_table("slack_users")
    op.drop_index("ix_slack_messages_approval_id", table_name="slack_messages")
    op.drop_table("slack_messages")
