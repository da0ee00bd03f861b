"""Bringing a process up against its database: schema, server keys, the admin key."""

from __future__ import annotations

import logging

from signoff import errors
from signoff.services import principals, server_secrets
from signoff.settings import Settings
from signoff.store import migrate
from signoff.store.engine import Database

log = logging.getLogger(__name__)


def open_database(settings: Settings) -> tuple[Database, server_secrets.Keys]:
    """Connect, make sure the schema is current, and load the server's keys.

    An SQLite file is upgraded in place (a single-node install should just start); a
    PostgreSQL schema that is behind is refused, because other servers may still run the old
    version: upgrading it is a deliberate ``signoff db upgrade``.
    """
    db = Database(settings.database_url, pool_size=settings.db_pool_size)
    if not migrate.is_current(db):
        if not db.is_sqlite:
            db.dispose()
            raise errors.SchemaBehind(
                f"the database schema is at {migrate.current_revision(db) or 'nothing'}, "
                f"this version needs {migrate.head_revision()}: run `signoff db upgrade`"
            )
        log.info("upgrading the SQLite schema to %s", migrate.head_revision())
        migrate.upgrade(db)
    keys = server_secrets.load(
        db,
        secret_key=settings.secret_key.get_secret_value() if settings.secret_key else None,
        webhook_secret=settings.webhook_secret.get_secret_value()
        if settings.webhook_secret
        else None,
        previous_webhook_secrets=tuple(
            secret.get_secret_value() for secret in settings.webhook_previous_secret
        ),
    )
    if settings.admin_api_key is not None:
        principals.ensure_admin_key(db, settings.admin_api_key.get_secret_value())
    return db, keys


def upgrade(settings: Settings) -> tuple[str | None, str]:
    """Upgrade the schema; the revisions before and after."""
    db = Database(settings.database_url, pool_size=1)
    try:
        before = migrate.current_revision(db)
        migrate.upgrade(db)
        return before, migrate.head_revision()
    finally:
        db.dispose()


def schema_status(settings: Settings) -> tuple[str | None, str]:
    """The schema revision the database is at, and the one this version needs."""
    db = Database(settings.database_url, pool_size=1)
    try:
        return migrate.current_revision(db), migrate.head_revision()
    finally:
        db.dispose()
