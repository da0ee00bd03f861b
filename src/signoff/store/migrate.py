"""Schema migrations: one Alembic chain for SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from signoff.store.engine import Database

MIGRATIONS = Path(__file__).parent / "migrations"

# Schema objects the migrations make by hand, outside the mappings: the title search's SQLite
# FTS5 table (and the tables FTS5 makes for it) and its PostgreSQL trigram index (0009).
UNMAPPED = ("approval_titles", "ix_approvals_title_trgm")


def is_mapped(name: str | None, _type: str, _parents: object) -> bool:
    """Alembic's ``include_name``: leave what ``UNMAPPED`` names out of autogenerate's
    comparison of the database with the mappings."""
    return name is None or not name.startswith(UNMAPPED)


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(db: Database, revision: str = "head") -> None:
    with db.engine.begin() as connection:
        config = _config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def downgrade(db: Database, revision: str) -> None:
    with db.engine.begin() as connection:
        config = _config()
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def current_revision(db: Database) -> str | None:
    with db.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def is_current(db: Database) -> bool:
    return current_revision(db) == head_revision()
