"""The inbox's text search: a trigram index of approval titles (SQLite FTS5, PostgreSQL
pg_trgm), so a search finds its matches first instead of testing titles in deadline order

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 01:00:00.000000
"""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# SQLite: an FTS5 table of its own (not an external-content table: approvals have no INTEGER
# PRIMARY KEY, and VACUUM may renumber their rowids), kept by triggers so every writer keeps
# it. Titles never change and approvals are never deleted today; the triggers cover both
# anyway (a delete finds its row by a scan of the search table).
SQLITE_UPGRADE = [
    """CREATE VIRTUAL TABLE approval_titles USING fts5(
        approval_id UNINDEXED, title, tokenize = 'trigram'
    )""",
    "INSERT INTO approval_titles (approval_id, title) SELECT id, title FROM approvals",
    """CREATE TRIGGER approval_titles_insert AFTER INSERT ON approvals BEGIN
        INSERT INTO approval_titles (approval_id, title) VALUES (new.id, new.title);
    END""",
    """CREATE TRIGGER approval_titles_update AFTER UPDATE OF title ON approvals BEGIN
        UPDATE approval_titles SET title = new.title WHERE approval_id = old.id;
    END""",
    """CREATE TRIGGER approval_titles_delete AFTER DELETE ON approvals BEGIN
        DELETE FROM approval_titles WHERE approval_id = old.id;
    END""",
]
SQLITE_DOWNGRADE = [
    "DROP TRIGGER approval_titles_delete",
    "DROP TRIGGER approval_titles_update",
    "DROP TRIGGER approval_titles_insert",
    "DROP TABLE approval_titles",
]

# PostgreSQL: pg_trgm is a trusted extension (PostgreSQL 13 and later), so the owner of the
# database may create it; the index serves the search's ``lower(title) LIKE '%...%'``.
POSTGRES_UPGRADE = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX ix_approvals_title_trgm ON approvals USING gin (lower(title) gin_trgm_ops)",
]
POSTGRES_DOWNGRADE = ["DROP INDEX ix_approvals_title_trgm"]  # the extension may serve others


def upgrade() -> None:
    if _is_sqlite():
        _require_trigrams()
    for statement in SQLITE_UPGRADE if _is_sqlite() else POSTGRES_UPGRADE:
        op.execute(statement)


def _require_trigrams() -> None:
    """FTS5's trigram tokenizer came with SQLite 3.34 (2020); say so rather than fail on a
    bare SQL error where Python links an older SQLite or one built without FTS5."""
    try:
        op.execute(
            "CREATE VIRTUAL TABLE temp.signoff_trigram_check USING fts5(x, tokenize=trigram)"
        )
        op.execute("DROP TABLE temp.signoff_trigram_check")
    except sa.exc.OperationalError as exc:
        version = sqlite3.sqlite_version
        raise RuntimeError(
            f"signoff needs SQLite 3.34 or newer with FTS5 (the trigram tokenizer); this Python "
            f"uses SQLite {version}: {exc.orig}"
        ) from exc


def downgrade() -> None:
    for statement in SQLITE_DOWNGRADE if _is_sqlite() else POSTGRES_DOWNGRADE:
        op.execute(statement)


def _is_sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"
