"""Alembic environment: run by ``signoff db upgrade`` and by ``store.migrate``, never alone."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from signoff.store.migrate import is_mapped
from signoff.store.tables import Base


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,
        compare_type=True,
        include_name=is_mapped,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `signoff db upgrade`")
_run(connection)
