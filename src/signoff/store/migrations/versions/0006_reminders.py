"""Reminders and escalation: an approval's timers

Revision ID: 0006
Revises: 0004
Create Date: 2026-11-25 18:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0004"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
SCHEDULED = sa.text("state = 'scheduled'")


def upgrade() -> None:
    op.create_table(
        "approval_timers",
        sa.Column("approval_id", sa.String(32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approvers", JSON, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["approval_id"],
            ["approvals.id"],
            name=op.f("fk_approval_timers_approval_id_approvals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("approval_id", "seq", name=op.f("pk_approval_timers")),
    )
    op.create_index(
        "ix_approval_timers_due_at_scheduled",
        "approval_timers",
        ["due_at"],
        sqlite_where=SCHEDULED,
        postgresql_where=SCHEDULED,
    )


def downgrade() -> None:
    op.drop_index("ix_approval_timers_due_at_scheduled", table_name="approval_timers")
    op.drop_table("approval_timers")
