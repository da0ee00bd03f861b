"""Fixtures shared by every test layer.

Storage: each test that asks for ``database_url`` (directly or through ``db``, ``settings`` or
``server``) gets an empty, migrated database: a copy of a migrated SQLite template by default,
or the PostgreSQL database in ``SIGNOFF_TEST_DATABASE_URL`` truncated to empty. Such tests are
marked ``storage`` so CI can rerun exactly them on PostgreSQL.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import text

from signoff.settings import Settings
from signoff.store import migrate
from signoff.store.engine import Database
from signoff.store.tables import Base
from signoff.web.app import create_app
from tests import factories
from tests.mailbox import Mailbox
from tests.oidc_provider import OidcProvider

TEST_DATABASE_URL = os.environ.get("SIGNOFF_TEST_DATABASE_URL")
ADMIN_KEY = factories.ADMIN_KEY
STORAGE_FIXTURES = {"database_url", "db", "settings", "server"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if STORAGE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.storage)


@pytest.fixture(scope="session")
def _migrated_template(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated database to start every test from: a file to copy, or the PG URL."""
    if TEST_DATABASE_URL:
        db = Database(TEST_DATABASE_URL)
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        migrate.upgrade(db)
        db.dispose()
        return TEST_DATABASE_URL
    path = tmp_path_factory.mktemp("template") / "signoff.db"
    db = Database(f"sqlite:///{path}")
    migrate.upgrade(db)
    db.dispose()
    return str(path)


@pytest.fixture
def database_url(_migrated_template: str, tmp_path: Path) -> str:
    if TEST_DATABASE_URL:
        _ThreadServer.wait_for_lingering()  # its worker would work on this test's rows
        _empty_postgres(TEST_DATABASE_URL)
        return TEST_DATABASE_URL
    path = tmp_path / "signoff.db"
    shutil.copy(_migrated_template, path)
    return f"sqlite:///{path}"


def _empty_postgres(url: str) -> None:
    """DELETE rather than TRUNCATE: a test leaves a few rows, and TRUNCATE's new files and
    their fsync cost more per table than deleting them (seconds per test with ~20 tables)."""
    db = Database(url, pool_size=1)
    with db.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
        conn.execute(
            text("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, :genesis)"),
            {"genesis": "0" * 64},
        )
    db.dispose()


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url, pool_size=20)
    yield database
    database.dispose()


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Change a test server's settings: ``@pytest.mark.parametrize("settings_overrides",
    [{...}], indirect=True)``."""
    return getattr(request, "param", {})


@pytest.fixture
def settings(database_url: str, settings_overrides: dict[str, Any]) -> Settings:
    """Settings for a test server: fast retries and short sleeps, so tests wait little."""
    fields: dict[str, Any] = {
        "database_url": database_url,
        "admin_api_key": ADMIN_KEY,
        "delivery_backoff_base_seconds": 0.05,
        "delivery_backoff_cap_seconds": 0.5,
        "delivery_timeout_seconds": 2.0,
        "worker_max_sleep_seconds": 0.5,
        "db_pool_size": 20,
        "webhook_allowed_networks": "127.0.0.0/8,::1/128",  # the test receivers are local
    }
    return Settings(**(fields | settings_overrides))


@dataclass
class RunningServer:
    url: str
    settings: Settings
    admin_key: str = ADMIN_KEY
    app: FastAPI | None = None  # the application it serves, for a test to reach its runtime


class _ThreadServer:
    """uvicorn in a background thread on a free loopback port, known before the app is made
    (so ``public_url``, which links in emails use, is right from the start).

    On PostgreSQL every test shares one database, so a server still shutting down when the
    next test starts (a loaded machine) would have its worker claim that test's deliveries:
    the next test waits for it first, and fails naming it if it never stops."""

    lingering: ClassVar[list[_ThreadServer]] = []

    def __init__(self, settings: Settings) -> None:
        self.test = os.environ.get("PYTEST_CURRENT_TEST", "?")
        self.settings = settings
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.url = settings.public_url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.app = create_app(settings)
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            timeout_graceful_shutdown=1,  # open long polls must not hold up a test's teardown
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.socket.close()
        if self.thread.is_alive():
            _ThreadServer.lingering.append(self)

    @classmethod
    def wait_for_lingering(cls, timeout: float = 60) -> None:
        while cls.lingering:
            server = cls.lingering.pop()
            server.thread.join(timeout=timeout)
            if server.thread.is_alive():
                pytest.fail(f"the test server of {server.test} did not stop in {timeout:.0f} s")


@pytest.fixture
def server(settings: Settings) -> Iterator[RunningServer]:
    running = _ThreadServer(settings)
    running.start()
    try:
        yield RunningServer(url=running.url, settings=settings, app=running.app)
    finally:
        running.stop()


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    """A real SMTP server on loopback; ``smtp_settings`` points a server at it."""
    box = Mailbox().start()
    yield box
    box.stop()


def smtp_settings(mailbox: Mailbox) -> dict[str, Any]:
    return {"smtp_host": "127.0.0.1", "smtp_port": mailbox.port, "smtp_security": "none"}


@pytest.fixture
def oidc_provider() -> Iterator[OidcProvider]:
    """A real OpenID Connect provider on a loopback port (``tests/oidc_provider.py``)."""
    with OidcProvider() as provider:
        yield provider
