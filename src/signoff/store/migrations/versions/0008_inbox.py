"""The inbox: indexes to page approvals by deadline, within one status or across all

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 18:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The requester is in both, so the inbox's "may this person see it?" reads no table row.
    op.create_index(
        "ix_approvals_status_deadline_at_id",
        "approvals",
        ["status", "deadline_at", "id", "requester_id"],
    )
    op.create_index(
        "ix_approvals_deadline_at_id", "approvals", ["deadline_at", "id", "requester_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_approvals_deadline_at_id", table_name="approvals")
    op.drop_index("ix_approvals_status_deadline_at_id", table_name="approvals")
