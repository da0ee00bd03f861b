"""The database: engine, transactions, and the notifications that wake waiters and workers.

One ``Database`` per process. ``write()`` and ``read()`` open one short transaction each and
turn driver failures into ``errors.StoreUnavailable``. On SQLite, writers queue on a
process-local lock rather than spinning in SQLite's busy handler, and those that queue together
share one commit (group commit: a commit costs more than a whole approval's statements); the
batch takes SQLite's write lock up front (``BEGIN IMMEDIATE``), and WAL lets reads run beside
it.

Notifications are how a commit wakes someone: ``notify(session, topic, key)`` inside a write
transaction is delivered after commit to every ``listen()`` callback of this process before
``write()`` returns, and on PostgreSQL also to every other process through ``LISTEN/NOTIFY``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import sqlalchemy.exc
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session

from signoff import errors

log = logging.getLogger(__name__)

CHANNEL = "signoff"
Listener = Callable[[str, str], None]
MAX_BATCH = 32  # write transactions one SQLite commit may carry
MAX_BATCH_SECONDS = 0.01  # and how long the first of them may wait for it


class _Batch:
    """An open SQLite transaction that several writers' savepoints go into."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.opened = time.monotonic()
        self.size = 0
        self.notifications: set[tuple[str, str]] = set()
        self.committed = threading.Event()
        self.error: Exception | None = None


class _WriterQueue:
    """The SQLite write lock: one holder; waiters that asked for priority go first.

    Each release wakes one waiter (a priority one when there is one), not all of them: with
    dozens of request threads waiting, waking them all per write would cost more than the write.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._turn = {True: threading.Condition(self._lock), False: threading.Condition(self._lock)}
        self._waiting = {True: 0, False: 0}
        self._held = False

    @property
    def waiting(self) -> int:
        return self._waiting[True] + self._waiting[False]

    @contextlib.contextmanager
    def held(self, *, priority: bool) -> Iterator[None]:
        with self._lock:
            self._waiting[priority] += 1
            try:
                while self._held or (not priority and self._waiting[True]):
                    self._turn[priority].wait()
            finally:  # also when interrupted: a stale count would keep batches open
                self._waiting[priority] -= 1
            self._held = True
        try:
            yield
        finally:
            with self._lock:
                self._held = False
                self._turn[bool(self._waiting[True])].notify()


def _in_transaction(connection: Connection) -> bool:
    return bool(connection.connection.dbapi_connection.in_transaction)  # type: ignore[union-attr]


def _run_before_commit(session: Session) -> None:
    for callback in session.info.pop("before_commit", {}).values():
        callback(session)


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
        self._listeners: list[Listener] = []
        # SQLite: one writer at a time, and group commit (see _write_in_batch).
        self._writers = _WriterQueue()
        self._batch: _Batch | None = None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextlib.contextmanager
    def write(self, *, priority: bool = False) -> Iterator[Session]:
        """One write transaction: its changes are committed when the block returns (and before
        ``write`` returns), rolled back if it raises.

        ``priority``: on SQLite, go ahead of other waiting writers. For the dispatcher's small
        writes, which finish what is already committed (a settled approval's callback), so
        that a flood of new requests does not hold up the pipelines waiting for callbacks."""
        if self.is_sqlite:
            with self._write_in_batch(priority) as session:
                yield session
            return
        with (
            self._translated(),
            Session(self.engine, expire_on_commit=False, autoflush=False) as session,
        ):
            yield session
            _run_before_commit(session)
            pending: set[tuple[str, str]] = session.info.pop("notify", set())
            if pending:
                session.execute(
                    text("SELECT pg_notify(:channel, :payload)"),
                    [{"channel": CHANNEL, "payload": f"{t} {k}"} for t, k in sorted(pending)],
                )
            session.commit()
        if pending:
            # This process hears it at once, before the caller returns; other processes
            # through NOTIFY (this one again too: listeners take a notification twice).
            self._deliver_locally(pending)

    @contextlib.contextmanager
    def _write_in_batch(self, priority: bool) -> Iterator[Session]:
        """SQLite's group commit. One writer at a time holds the write lock and runs its block
        in a savepoint of the open batch transaction; whoever finishes while nobody else is
        waiting for the lock (or fills the batch) commits it for everyone in it. Each caller
        returns only after its batch committed, and gets ``StoreUnavailable`` if that failed."""
        with self._writers.held(priority=priority):
            batch = self._batch or self._open_batch()
            try:
                with (
                    self._translated(),
                    Session(
                        bind=batch.connection,
                        join_transaction_mode="create_savepoint",
                        expire_on_commit=False,
                        autoflush=False,
                    ) as session,
                ):
                    yield session
                    _run_before_commit(session)
                    session.commit()  # releases the savepoint
                    batch.notifications |= session.info.pop("notify", set())
                    batch.size += 1
            finally:
                if (
                    self._writers.waiting == 0
                    or batch.size >= MAX_BATCH
                    or time.monotonic() - batch.opened > MAX_BATCH_SECONDS
                    or not _in_transaction(batch.connection)
                ):
                    self._finish_batch(batch)
        batch.committed.wait()
        if batch.error is not None:
            raise errors.StoreUnavailable(f"database error: {batch.error}") from batch.error

    def _open_batch(self) -> _Batch:
        with self._translated():
            connection = self.engine.connect()
            try:
                with _immediate():
                    connection.begin()
            except BaseException:
                connection.close()
                raise
        self._batch = _Batch(connection)
        return self._batch

    def _finish_batch(self, batch: _Batch) -> None:
        """Commit the batch (or, if its transaction is gone, fail everyone in it), tell this
        process's listeners, then release the writers waiting for it."""
        self._batch = None
        try:
            if not _in_transaction(batch.connection):
                # An error such as a full disk rolled back the whole transaction, not just
                # one savepoint: the earlier writers' changes are gone.
                raise sqlalchemy.exc.OperationalError(
                    "COMMIT", None, Exception("the transaction was rolled back by an error")
                )
            batch.connection.commit()
        except Exception as exc:
            batch.error = exc
            with contextlib.suppress(Exception):
                batch.connection.rollback()
        try:
            with contextlib.suppress(Exception):
                batch.connection.close()
            if batch.error is None and batch.notifications:
                # Before anyone returns: a caller that revoked a key must find it forgotten.
                self._deliver_locally(batch.notifications)
        finally:
            batch.committed.set()

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        with self._translated(), Session(self.engine, expire_on_commit=False) as session:
            yield session

    @staticmethod
    def before_commit(session: Session, name: str, callback: Callable[[Session], None]) -> None:
        """Run ``callback`` once, last thing before this write transaction commits."""
        session.info.setdefault("before_commit", {}).setdefault(name, callback)

    @staticmethod
    def notify(session: Session, topic: str, key: str = "") -> None:
        """Wake listeners of ``topic`` once this transaction commits."""
        session.info.setdefault("notify", set()).add((topic, key))

    async def listen(self, callback: Listener) -> None:
        """Call ``callback(topic, key)`` for every notification until cancelled.

        ``callback`` may be called from any thread. After a lost connection it is called with
        ``("*", "")``: whatever was missed, re-check.
        """
        self._listeners.append(callback)
        try:
            if self.is_sqlite:
                await asyncio.Event().wait()
            else:
                await _listen_postgres(self.url, callback)
        finally:
            self._listeners.remove(callback)

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
        except sqlalchemy.exc.DataError as exc:
            # A value the schemas let through but a column refuses (PostgreSQL checks lengths).
            raise errors.InvalidInput(f"a value does not fit the database: {exc.orig}") from exc
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
        # Take transactions into our own hands (see _begin below).
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

    # SQLAlchemy's recipe is a "begin" event listener, but any connection event makes every
    # statement run the event machinery (about 8% of a create); the dialect's own begin hook
    # costs nothing per statement. The batch opener asks for IMMEDIATE through _begin_mode.
    engine.dialect.do_begin = _begin  # type: ignore[method-assign]
    return engine


_begin_mode = threading.local()


def _begin(dbapi_connection: Any) -> None:
    dbapi_connection.execute(f"BEGIN {getattr(_begin_mode, 'mode', 'DEFERRED')}")


@contextlib.contextmanager
def _immediate() -> Iterator[None]:
    """Transactions this thread begins meanwhile take SQLite's write lock at once."""
    _begin_mode.mode = "IMMEDIATE"
    try:
        yield
    finally:
        _begin_mode.mode = "DEFERRED"


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
