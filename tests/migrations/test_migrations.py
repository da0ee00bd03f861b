"""The one Alembic chain builds exactly the schema the code maps, on SQLite and PostgreSQL,
and the server treats a schema that is behind as the issue asks."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from signoff import errors
from signoff.domain.principals import MEMBER_SCOPES, Scope
from signoff.services import server
from signoff.settings import Settings
from signoff.store import migrate, outbox
from signoff.store import principals as principals_store
from signoff.store.engine import Database
from signoff.store.tables import Base
from signoff.worker.senders import email


def test_the_migrated_schema_matches_the_mappings(db):
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_name": migrate.is_mapped})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_upgrade_from_empty_then_again_is_a_no_op(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'fresh.db'}")
    assert migrate.current_revision(db) is None
    migrate.upgrade(db)
    migrate.upgrade(db)
    assert migrate.is_current(db)
    db.dispose()


def test_downgrade_to_empty_and_back(db):
    migrate.downgrade(db, "base")
    assert migrate.current_revision(db) is None
    migrate.upgrade(db)
    assert migrate.is_current(db)


def test_the_server_upgrades_an_sqlite_file_itself(tmp_path):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'new.db'}")
    db, keys = server.open_database(settings)
    assert migrate.is_current(db)
    assert keys.webhook_secret.startswith("whsec_")
    db.dispose()


def test_the_server_refuses_a_postgres_schema_that_is_behind(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: SQLite files are upgraded in place")
    db = Database(database_url)
    with db.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'older'"))
    try:
        with pytest.raises(errors.SchemaBehind, match="signoff db upgrade"):
            server.open_database(Settings(database_url=database_url))
        # and every command that opens the database says so in one line, without a traceback
        env = os.environ | {"SIGNOFF_DATABASE_URL": database_url}
        for command in (["worker"], ["users", "create", "x@example.com"], ["audit", "verify"]):
            ran = subprocess.run(
                [str(Path(sys.executable).parent / "signoff"), *command],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert ran.returncode == 1, (command, ran.stderr)
            assert "run `signoff db upgrade` (schema_behind)" in ran.stderr, (command, ran.stderr)
            assert "Traceback" not in ran.stderr
    finally:
        with db.engine.begin() as connection:
            connection.execute(
                text("UPDATE alembic_version SET version_num = :head"),
                {"head": migrate.head_revision()},
            )
        db.dispose()


def test_keys_made_before_scopes_keep_what_their_users_role_allowed(db):
    migrate.downgrade(db, "0001")
    with db.engine.begin() as connection:
        for user_id, role in (("usr_admin", "admin"), ("usr_member", "member")):
            connection.execute(
                text(
                    "INSERT INTO users (id, email, name, role, kind, is_active, created_at) "
                    "VALUES (:id, :email, 'x', :role, 'person', true, '2026-01-01')"
                ),
                {"id": user_id, "email": f"{user_id}@example.com", "role": role},
            )
            connection.execute(
                text(
                    "INSERT INTO api_keys (id, user_id, name, prefix, key_hash, created_at) "
                    "VALUES (:id, :user, '', 'sok_', :hash, '2026-01-01')"
                ),
                {"id": f"key_{role}", "user": user_id, "hash": role * 8},
            )
    migrate.upgrade(db)
    with db.read() as session:
        member = principals_store.get_api_key(session, "key_member")
        admin = principals_store.get_api_key(session, "key_admin")
    assert member.scopes == MEMBER_SCOPES
    assert admin.scopes == MEMBER_SCOPES | {Scope.ADMIN}
    assert member.expires_at is None


def test_events_and_deliveries_made_before_subscriptions_are_still_delivered(db):
    migrate.downgrade(db, "0003")
    with db.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO events (id, type, subject, actor, data, occurred_at) VALUES "
                "('evt_old', 'approval.settled', 'ap_old', 'user:usr_1', '{}', :at)"
            ),
            {"at": "2026-01-01 00:00:00"},
        )
        connection.execute(
            text(
                "INSERT INTO deliveries (id, event_id, target_kind, target, status, attempts, "
                "next_attempt_at, created_at) VALUES ('msg_old', 'evt_old', 'callback', "
                "'https://example.com/cb', 'pending', 0, :at, :at)"
            ),
            {"at": "2026-01-01 00:00:00"},
        )
    migrate.upgrade(db)
    with db.write() as session:
        (claimed,) = outbox.claim_due(
            session, now=datetime.now(UTC), lease=timedelta(seconds=30), limit=10
        )
    assert (claimed.id, claimed.subscription_id, claimed.event.version) == ("msg_old", None, 1)
    assert claimed.payload()["version"] == 1


def test_deliveries_made_before_0007_get_their_purpose(db):
    migrate.downgrade(db, "0004")
    at = {"at": "2026-01-01 00:00:00"}
    with db.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO subscriptions (id, name, kind, target, filter, enabled, created_at, "
                "updated_at) VALUES ('sub_1', 'hook', 'webhook', '\"https://example.com/h\"', "
                "'{}', true, :at, :at)"
            ),
            at,
        )
        for event_id, event_type, subject in (
            ("evt_created", "approval.created", "ap_old"),
            ("evt_invite", "invitation.sent", "inv_old"),
        ):
            connection.execute(
                text(
                    "INSERT INTO events (id, type, subject, actor, data, occurred_at) VALUES "
                    "(:id, :type, :subject, 'user:usr_1', '{}', :at)"
                ),
                {"id": event_id, "type": event_type, "subject": subject} | at,
            )
        for delivery_id, event_id, kind, subscription_id in (
            ("msg_callback", "evt_created", "callback", None),
            ("msg_hook", "evt_created", "webhook", "sub_1"),
            ("msg_approver", "evt_created", "email", None),
            ("msg_invite", "evt_invite", "email", None),
        ):
            connection.execute(
                text(
                    "INSERT INTO deliveries (id, event_id, target_kind, target, status, "
                    "attempts, next_attempt_at, created_at, subscription_id) VALUES (:id, "
                    ":event_id, :kind, 'x', 'dead', 3, :at, :at, :subscription_id)"
                ),
                {"id": delivery_id, "event_id": event_id, "kind": kind}
                | {"subscription_id": subscription_id}
                | at,
            )
    migrate.upgrade(db)
    with db.engine.connect() as connection:
        found = dict(connection.execute(text("SELECT id, purpose FROM deliveries")).all())
    assert found == {
        "msg_callback": "callback",
        "msg_hook": "subscription",
        "msg_approver": "approver",
        "msg_invite": "account",
    }


def test_a_deleted_subscriptions_deliveries_made_before_0007_stay_sendable(db):
    """Pending deliveries of a subscription deleted before 0007 (subscription_id set NULL)
    and Slack message updates are a subscription's, so their email renders with the generic
    template (there is no approver template for approval.settled)."""
    migrate.downgrade(db, "0006")
    at = {"at": "2026-01-01 00:00:00"}
    with db.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO events (id, type, subject, actor, data, occurred_at) VALUES "
                "('evt_s', 'approval.settled', 'ap_old', 'user:usr_1', :data, :at)"
            ),
            {"data": '{"id": "ap_old", "title": "t", "status": "approved"}'} | at,
        )
        for delivery_id, kind, target in (
            ("msg_mail", "email", "ops@example.com"),
            ("msg_slack_update", "slack", "C0123ABCD/1700000000.000100"),
        ):
            connection.execute(
                text(
                    "INSERT INTO deliveries (id, event_id, target_kind, target, status, "
                    "attempts, next_attempt_at, created_at, subscription_id) VALUES (:id, "
                    "'evt_s', :kind, :target, 'pending', 1, :at, :at, NULL)"
                ),
                {"id": delivery_id, "kind": kind, "target": target} | at,
            )
    migrate.upgrade(db)
    with db.engine.connect() as connection:
        found = dict(connection.execute(text("SELECT id, purpose FROM deliveries")).all())
    assert found == {"msg_mail": "subscription", "msg_slack_update": "subscription"}
    with db.write() as session:
        claimed = outbox.claim_due(
            session, now=datetime.now(UTC), lease=timedelta(seconds=30), limit=10
        )
    mail = next(d for d in claimed if d.id == "msg_mail")
    message = email.render(mail, public_url="https://signoff.example.com", secret_key="k" * 32)
    assert message["To"] == "ops@example.com"
