"""Several processes on one PostgreSQL database: servers without workers, a separate worker,
and waiters on one server woken by decisions taken on another (LISTEN/NOTIFY)."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

import signoff
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


def _until(condition, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)
