"""The database: engine, transactions, and the notifications that wake waiters and workers.

One ``Database`` per process. ``write()`` and ``read()`` open one short transaction each and
turn driver failures into ``errors.StoreUnavailable``. On SQLite, writes take the write lock up
front (``BEGIN IMMEDIATE``) and queue on a process-local lock first, so threads wait in order
instead of spinning in SQLite's busy handler; WAL lets reads run beside them.

Notifications are how a commit wakes someone: ``notify(session, topic, key)`` inside a write
transaction is delivered after commit to every ``listen()`` callback, through PostgreSQL's
``LISTEN/NOTIFY`` on PostgreSQL (so every process hears it) and in-process on SQLite.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import sqlalchemy.exc
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session

from signoff import errors

log = logging.getLogger(__name__)

CHANNEL = "signoff"
Listener = Callable[[str, str], None]


def normalise_url(url: str) -> URL:
    """SQLAlchemy URL with signoff's drivers: psycopg 3 for PostgreSQL."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


class Database:
    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False) -> None:
        self.url = normalise_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self.engine = (
            _sqlite_engine(self.url, pool_size)
            if self.is_sqlite
            else _pg_engine(self.url, pool_size)
        )
        self.engine.echo = echo
        self._write_lock = threading.Lock() if self.is_sqlite else contextlib.nullcontext()
        self._listeners: list[Listener] = []

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextlib.contextmanager
    def write(self) -> Iterator[Session]:
        """One write transaction: commits if the block returns, rolls back if it raises."""
        with (
            self._write_lock,
            self._translated(),
            Session(self.engine, expire_on_commit=False, autoflush=False) as session,
        ):
            session.connection(execution_options={"signoff_begin": "IMMEDIATE"})
            yield session
            for callback in session.info.pop("before_commit", {}).values():
                callback(session)
            pending: set[tuple[str, str]] = session.info.pop("notify", set())
            if pending and not self.is_sqlite:
                session.execute(
                    text("SELECT pg_notify(:channel, :payload)"),
                    [{"channel": CHANNEL, "payload": f"{t} {k}"} for t, k in sorted(pending)],
                )
            session.commit()
        if pending and self.is_sqlite:
            self._deliver_locally(pending)

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        with self._translated(), Session(self.engine, expire_on_commit=False) as session:
            yield session

    @staticmethod
    def before_commit(session: Session, name: str, callback: Callable[[Session], None]) -> None:
        """Run ``callback`` once, last thing before this write transaction commits."""
        session.info.setdefault("before_commit", {}).setdefault(name, callback)

    def notify(self, session: Session, topic: str, key: str = "") -> None:
        """Wake listeners of ``topic`` once this transaction commits."""
        session.info.setdefault("notify", set()).add((topic, key))

    async def listen(self, callback: Listener) -> None:
        """Call ``callback(topic, key)`` for every notification until cancelled.

        ``callback`` may be called from any thread. After a lost connection it is called with
        ``("*", "")``: whatever was missed, re-check.
        """
        if self.is_sqlite:
            self._listeners.append(callback)
            try:
                await asyncio.Event().wait()
            finally:
                self._listeners.remove(callback)
        else:
            await _listen_postgres(self.url, callback)

    def dispose(self) -> None:
        self.engine.dispose()

    def _deliver_locally(self, pending: set[tuple[str, str]]) -> None:
        for listener in list(self._listeners):
            for topic, key in pending:
                listener(topic, key)

    @contextlib.contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except sqlalchemy.exc.IntegrityError as exc:
            raise errors.Conflict("the change conflicts with existing data") from exc
        except (
            sqlalchemy.exc.OperationalError,
            sqlalchemy.exc.InterfaceError,
            sqlalchemy.exc.TimeoutError,
        ) as exc:
            raise errors.StoreUnavailable(f"database error: {exc.orig or exc}") from exc  # type: ignore[union-attr]


def _sqlite_engine(url: URL, pool_size: int) -> Engine:
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 30},
        pool_size=pool_size,
        max_overflow=pool_size * 4,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transactions into our own hands (see "begin" below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "foreign_keys=ON",
            "busy_timeout=30000",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get("signoff_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _pg_engine(url: URL, pool_size: int) -> Engine:
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size * 2, pool_pre_ping=True)


async def _listen_postgres(url: URL, callback: Listener) -> None:
    import psycopg  # only PostgreSQL deployments need the driver

    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    delay = 0.5
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                await conn.execute(f"LISTEN {CHANNEL}")
                callback("*", "")  # anything sent while we were not listening
                delay = 0.5
                async for notice in conn.notifies():
                    topic, _, key = notice.payload.partition(" ")
                    callback(topic, key)
        except psycopg.Error as exc:
            log.warning("LISTEN connection lost (%s); reconnecting in %.1fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
