"""API keys get scopes and an optional expiry

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 14:10:00.000000
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
# What keys made before scopes existed could do: everything their user's role allows.
MEMBER = ["approvals:decide", "approvals:read", "approvals:write"]
ADMIN = ["admin", *MEMBER]


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scopes", JSON, nullable=True))
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    bind = op.get_bind()
    keys = sa.table("api_keys", sa.column("id"), sa.column("user_id"), sa.column("scopes", JSON))
    users = sa.table("users", sa.column("id"), sa.column("role"))
    for role, scopes in (("admin", ADMIN), ("member", MEMBER)):
        owners = sa.select(users.c.id).where(users.c.role == role)
        bind.execute(
            keys.update().where(keys.c.user_id.in_(owners)).values(scopes=sa.bindparam("s")),
            {"s": scopes},
        )
    bind.execute(keys.update().where(keys.c.scopes.is_(None)).values(scopes=json.loads("[]")))
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.alter_column("scopes", existing_type=JSON, nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("expires_at")
        batch_op.drop_column("scopes")
