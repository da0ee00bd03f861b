"""SQLite's group commit: writers that queue together share a commit, one failing writer
costs the others nothing, nobody returns before their batch is committed, and the
dispatcher's priority writes go ahead of waiting requests."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable

import pytest
from sqlalchemy import event, text

from signoff import errors
from signoff.store.engine import Database


@pytest.fixture
def sqlite_db(db: Database) -> Database:
    if not db.is_sqlite:
        pytest.skip("group commit is how SQLite writes; PostgreSQL commits each transaction")
    with db.write() as session:
        session.execute(text("CREATE TABLE IF NOT EXISTS t (name TEXT PRIMARY KEY)"))
    return db


def count_commits(db: Database) -> list[int]:
    commits = [0]

    @event.listens_for(db.engine, "commit")
    def _commit(_conn: object) -> None:
        commits[0] += 1

    return commits


def run_while_blocked(db: Database, writers: list[Callable[[], None]]) -> None:
    """Hold the write lock, queue ``writers`` behind it in order, then let everyone go."""
    holding, release = threading.Event(), threading.Event()

    def holder() -> None:
        with contextlib.suppress(errors.StoreUnavailable), db.write() as session:
            session.execute(text("INSERT INTO t VALUES ('holder')"))
            holding.set()
            release.wait(10)

    threads = [threading.Thread(target=holder)]
    threads[0].start()
    holding.wait(10)
    for writer in writers:
        threads.append(threading.Thread(target=writer))
        threads[-1].start()
        time.sleep(0.05)  # queued in this order
    release.set()
    for thread in threads:
        thread.join(10)


def test_queued_writers_share_commits_and_a_failing_one_loses_only_its_own_change(sqlite_db):
    commits = count_commits(sqlite_db)
    outcomes: dict[str, str] = {}

    def writer(name: str) -> Callable[[], None]:
        def write() -> None:
            try:
                with sqlite_db.write() as session:
                    session.execute(text("INSERT INTO t VALUES (:n)"), {"n": name})
                    if name == "w3":
                        raise ValueError("this writer changes its mind")
                # returned: so the change must already be visible to a fresh reader
                with sqlite_db.read() as session:
                    seen = session.scalar(
                        text("SELECT count(*) FROM t WHERE name = :n"), {"n": name}
                    )
                outcomes[name] = "committed" if seen == 1 else "returned before commit"
            except ValueError:
                outcomes[name] = "raised"

        return write

    run_while_blocked(sqlite_db, [writer(f"w{i}") for i in range(8)])
    assert outcomes == {f"w{i}": "raised" if i == 3 else "committed" for i in range(8)}
    with sqlite_db.read() as session:
        names = set(session.scalars(text("SELECT name FROM t")))
    assert names == {"holder"} | {f"w{i}" for i in range(8) if i != 3}
    assert commits[0] < 9  # nine transactions, fewer commits


def test_a_conflict_in_one_writer_is_its_own(sqlite_db):
    with sqlite_db.write() as session:
        session.execute(text("INSERT INTO t VALUES ('taken')"))
    with pytest.raises(errors.Conflict), sqlite_db.write() as session:
        session.execute(text("INSERT INTO t VALUES ('taken')"))
    with sqlite_db.write() as session:
        session.execute(text("INSERT INTO t VALUES ('free')"))
    with sqlite_db.read() as session:
        assert set(session.scalars(text("SELECT name FROM t"))) == {"taken", "free"}


def test_priority_writers_go_ahead_of_waiting_ones(sqlite_db):
    order: list[str] = []

    def writer(name: str, *, priority: bool = False) -> Callable[[], None]:
        def write() -> None:
            with sqlite_db.write(priority=priority):
                order.append(name)

        return write

    normal = [writer(f"request-{i}") for i in range(5)]
    run_while_blocked(sqlite_db, [*normal, writer("dispatcher", priority=True)])
    assert order[0] == "dispatcher"
    assert sorted(order[1:]) == [f"request-{i}" for i in range(5)]


def test_a_write_holds_sqlites_write_lock_from_its_first_statement_and_reads_do_not(sqlite_db):
    path = sqlite_db.url.database
    assert path is not None

    def other_writer_can_start() -> bool:
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError:
            return False
        finally:
            other.close()

    with sqlite_db.write() as session:
        session.execute(text("SELECT 1"))  # reads nothing: only BEGIN IMMEDIATE takes the lock
        assert not other_writer_can_start()
    with sqlite_db.read() as session:
        session.execute(text("SELECT count(*) FROM t"))
        assert other_writer_can_start()
    assert other_writer_can_start()


def test_a_writer_that_kills_the_batch_transaction_fails_the_whole_batch(sqlite_db):
    # Some SQLite errors (disk full, I/O) roll back the whole transaction, not one savepoint.
    # Then nobody in the batch may be told their change was committed.
    outcomes: dict[str, str] = {}

    def writer(name: str, *, kill: bool = False) -> Callable[[], None]:
        def write() -> None:
            try:
                with sqlite_db.write() as session:
                    session.execute(text("INSERT INTO t VALUES (:n)"), {"n": name})
                    if kill:
                        session.connection().exec_driver_sql("ROLLBACK")
                        raise ValueError("as if the disk were full")
                outcomes[name] = "returned"
            except (ValueError, errors.StoreUnavailable) as exc:
                outcomes[name] = type(exc).__name__

        return write

    run_while_blocked(sqlite_db, [writer("a"), writer("killer", kill=True), writer("after")])
    with sqlite_db.read() as session:
        names = set(session.scalars(text("SELECT name FROM t")))
    assert outcomes["a"] == "StoreUnavailable"  # its change is gone: it must not hear "done"
    assert outcomes["killer"] != "returned"
    assert "a" not in names
    assert (outcomes["after"] == "returned") == ("after" in names)
