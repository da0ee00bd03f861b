"""Several processes on one PostgreSQL database: servers without workers, separate workers,
and waiters on one server woken by decisions taken on another (LISTEN/NOTIFY).

Two workers share the deliveries without sending one twice at the same time (claims are
``SKIP LOCKED`` leases), and a worker killed mid-send loses nothing: another sends what it
held once the lease runs out."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from sqlalchemy import text

import signoff
from signoff.store.engine import Database
from tests.processes import ServerProcess, WorkerProcess
from tests.receivers import Receiver

pytestmark = pytest.mark.slow
ADMIN = "sok_processes-test-admin"


@pytest.fixture
def env(database_url: str) -> dict[str, str]:
    if not database_url.startswith("postgresql"):
        pytest.skip("several processes share a database on PostgreSQL")
    return {
        "SIGNOFF_DATABASE_URL": database_url,
        "SIGNOFF_ADMIN_API_KEY": ADMIN,
        "SIGNOFF_WORKER_MAX_SLEEP_SECONDS": "30",  # so only a notification can wake anyone fast
    }


@pytest.fixture
def servers(env, tmp_path):
    started = [
        ServerProcess(env, tmp_path / f"server{n}.log", args=("--no-worker",)) for n in (1, 2)
    ]
    for server in started:
        server.start()
    yield started
    for server in started:
        server.stop()


def _people(url: str) -> tuple[signoff.Client, str]:
    """The admin's client, and Alice's API key."""
    admin = signoff.Client(url, ADMIN)
    admin.people.create_user("alice@example.com")
    return admin, admin.people.create_key(user="alice@example.com").key


def test_a_waiter_on_one_server_wakes_when_another_settles(servers):
    first, second = servers
    admin, alice_key = _people(first.url)
    alice = signoff.Client(second.url, alice_key)
    approval = admin.approvals.create(title="t", approvers=["alice@example.com"])
    answers: list[signoff.Approval] = []
    waiting = threading.Thread(
        target=lambda: answers.append(admin.approvals.wait(approval.id, timeout=20))
    )
    waiting.start()
    _until(lambda: httpx.get(f"{first.url}/healthz").json()["waiters"] == 1)
    decided_at = time.monotonic()
    alice.approvals.approve(approval.id)
    waiting.join(timeout=20)
    assert answers[0].status == "approved"
    assert time.monotonic() - decided_at < 3  # far below the 5 s sweep: the notification woke it


def test_a_separate_worker_delivers_callbacks_and_settles_deadlines(servers, env, tmp_path):
    worker = WorkerProcess(env, tmp_path / "worker.log")
    worker.start()
    try:
        admin, alice_key = _people(servers[0].url)
        alice = signoff.Client(servers[0].url, alice_key)
        with Receiver() as receiver:
            decided = admin.approvals.create(
                title="a", approvers=["alice@example.com"], callback_url=receiver.url
            )
            alice.approvals.approve(decided.id)
            timed_out = admin.approvals.create(
                title="b", approvers=["alice@example.com"], timeout=1, callback_url=receiver.url
            )
            calls = receiver.wait_for(2, timeout=20)
        assert {c.event["data"]["id"] for c in calls} == {decided.id, timed_out.id}
        assert admin.approvals.get(timed_out.id).outcome == {
            "status": "rejected",
            "reason": "timeout",
        }
    finally:
        worker.stop()


CONCURRENCY = 4  # sends in flight per worker


def _backlog(url: str, receiver: Receiver, count: int) -> tuple[signoff.Client, set[str]]:
    """``count`` settled approvals whose callbacks wait for a worker; the admin's client and
    the deliveries' ids."""
    admin, alice_key = _people(url)
    alice = signoff.Client(url, alice_key)
    made = []
    for _ in range(count):
        approval = admin.approvals.create(
            title="t", approvers=["alice@example.com"], callback_url=receiver.url
        )
        alice.approvals.approve(approval.id)
        made.append(approval.id)
    return admin, {d.id for a in made for d in admin.approvals.deliveries(a)}


def _all_delivered(admin: signoff.Client) -> bool:
    return not admin.deliveries.list(status="pending").items


def test_two_workers_share_the_deliveries_and_never_send_one_twice_at_once(servers, env, tmp_path):
    """Both workers listen before the traffic starts, so every settlement's notification wakes
    them together and they race to claim the same delivery; slow answers then keep each
    worker's slots full, so they also claim side by side from a backlog."""
    workers = [
        WorkerProcess(
            env | {"SIGNOFF_DELIVERY_CONCURRENCY": str(CONCURRENCY)}, tmp_path / f"worker{n}.log"
        )
        for n in (1, 2)
    ]
    for worker in workers:
        worker.start()
    try:
        _until(lambda: _listening(env["SIGNOFF_DATABASE_URL"]) == len(servers) + len(workers))
        with Receiver() as receiver:
            receiver.delay = 0.25
            admin, expected = _backlog(servers[0].url, receiver, 80)
            _until(lambda: _all_delivered(admin), timeout=60)
    finally:
        for worker in workers:
            worker.stop()
    sent = [call.headers["webhook-id"] for call in receiver.received]
    assert sorted(sent) == sorted(expected)  # every delivery, each exactly once
    assert receiver.most_in_flight_per_id == 1
    assert receiver.most_in_flight > CONCURRENCY  # the two workers were sending together


def _listening(database_url: str) -> int:
    """Processes listening for notifications: each server and worker keeps one connection."""
    db = Database(database_url, pool_size=1)
    try:
        with db.read() as session:
            query = text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND query = 'LISTEN signoff'"
            )
            return int(session.scalar(query) or 0)
    finally:
        db.dispose()


def test_a_worker_killed_mid_send_loses_nothing(servers, env, tmp_path):
    """What the killed worker had in flight is not recorded as sent; the other worker sends
    it when the lease (2 x 1 s + 5 s) runs out: the receiver sees it twice, with one
    webhook-id, never at the same time."""
    quick = env | {
        "SIGNOFF_DELIVERY_CONCURRENCY": str(CONCURRENCY),
        "SIGNOFF_DELIVERY_TIMEOUT_SECONDS": "1",
    }
    doomed = WorkerProcess(quick, tmp_path / "doomed.log")
    survivor = WorkerProcess(quick, tmp_path / "survivor.log")
    with Receiver() as receiver:
        receiver.delay = 0.5
        admin, expected = _backlog(servers[0].url, receiver, 20)
        doomed.start()
        receiver.wait_started(CONCURRENCY, timeout=30)
        doomed.kill9()  # long before the first of its 0.5 s answers
        cut_off = set(receiver.in_flight)  # every webhook-id that arrived so far
        receiver.delay = 0
        survivor.start()
        try:
            _until(lambda: _all_delivered(admin), timeout=60)
        finally:
            survivor.stop()
    sent = [call.headers["webhook-id"] for call in receiver.received]
    assert set(sent) == expected
    twice = {webhook_id for webhook_id in sent if sent.count(webhook_id) > 1}
    # At least the first CONCURRENCY sends; more when the kill came after some had answered
    # (a loaded machine): those were recorded as sent, or are resent below, once each.
    assert len(cut_off) >= CONCURRENCY
    assert twice <= cut_off
    assert receiver.most_in_flight_per_id == 1
    for webhook_id in cut_off:
        assert admin.deliveries.get(webhook_id).attempts == 1  # the killed send left no record


def _until(condition, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)
