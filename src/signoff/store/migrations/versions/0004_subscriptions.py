"""Subscriptions: where matching events go; each event keeps its payload's version, and a
delivery the subscription it was made for

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 16:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("target", JSON, nullable=False),
        sa.Column("filter", JSON, nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
        sa.UniqueConstraint("name", name=op.f("uq_subscriptions_name")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
    # SQLite adds a foreign key by copying the table: once, at upgrade.
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("subscription_id", sa.String(32), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_deliveries_subscription_id_subscriptions"),
            "subscriptions",
            ["subscription_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_index("ix_deliveries_subscription_id", ["subscription_id"])


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_subscription_id")
        batch_op.drop_constraint(
            op.f("fk_deliveries_subscription_id_subscriptions"), type_="foreignkey"
        )
        batch_op.drop_column("subscription_id")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("version")
    op.drop_table("subscriptions")
