"""Each delivery says why it was made (an approval's callback, an approver's email, a
subscription's match, an account email), so an approval can list its own deliveries after a
subscription is deleted; and dead letters get a partial index of their own

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 18:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

DEAD = sa.text("status = 'dead'")

# Rows made before 0007: a callback is a callback, anything linked to a subscription is the
# subscription's, an invitation or reset email is an account email, an email of an approval's
# creation, reminder or escalation went to one person who may decide it, and everything else
# is a subscription's (a deleted subscription's deliveries lost their link; a Slack message
# update has no subscription link either, and is sent as a subscription's).
BACKFILL = """
UPDATE deliveries SET purpose = CASE
    WHEN target_kind = 'callback' THEN 'callback'
    WHEN subscription_id IS NOT NULL THEN 'subscription'
    WHEN target_kind = 'email' AND EXISTS (
        SELECT 1 FROM events
        WHERE events.id = deliveries.event_id
          AND events.type IN ('invitation.sent', 'password_reset.requested')
    ) THEN 'account'
    WHEN target_kind = 'email' AND EXISTS (
        SELECT 1 FROM events
        WHERE events.id = deliveries.event_id
          AND events.type IN (
              'approval.created', 'approval.reminder_due', 'approval.escalated'
          )
    ) THEN 'approver'
    ELSE 'subscription'
END
"""


def upgrade() -> None:
    # Added nullable, filled, then made NOT NULL: one table copy on SQLite (the batch), and
    # on PostgreSQL an ADD COLUMN without a default rewrites nothing.
    op.add_column("deliveries", sa.Column("purpose", sa.String(16), nullable=True))
    op.execute(BACKFILL)
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.alter_column("purpose", existing_type=sa.String(16), nullable=False)
        batch_op.create_index(
            "ix_deliveries_id_dead", ["id"], sqlite_where=DEAD, postgresql_where=DEAD
        )


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_id_dead")
        batch_op.drop_column("purpose")
