"""kill -9 at any moment loses no decision and no callback (at least once, deduplicated by
webhook-id)."""

from __future__ import annotations

import random
import threading
import time

import httpx
import pytest

import signoff
from signoff import errors
from tests.processes import ServerProcess
from tests.receivers import Receiver, free_port

pytestmark = pytest.mark.slow
ADMIN = "sok_crash-test-admin"


@pytest.fixture
def process(database_url: str, tmp_path) -> ServerProcess:
    server = ServerProcess(
        {
            "SIGNOFF_DATABASE_URL": database_url,
            "SIGNOFF_ADMIN_API_KEY": ADMIN,
            "SIGNOFF_DELIVERY_BACKOFF_BASE_SECONDS": "0.05",
            "SIGNOFF_DELIVERY_BACKOFF_CAP_SECONDS": "0.5",
            "SIGNOFF_DELIVERY_TIMEOUT_SECONDS": "1",
            "SIGNOFF_WORKER_MAX_SLEEP_SECONDS": "0.5",
        },
        tmp_path / "server.log",
    )
    yield server
    server.stop()


def _setup(url: str) -> tuple[signoff.Client, signoff.Client]:
    admin = signoff.Client(url, ADMIN)
    admin.people.create_user("alice@example.com")
    alice = signoff.Client(url, admin.people.create_key(user="alice@example.com").key)
    return admin, alice


def test_a_callback_owed_when_the_server_died_is_delivered_after_restart(process):
    port = free_port()
    process.start()
    admin, alice = _setup(process.url)
    approval = admin.approvals.create(
        title="t", approvers=["alice@example.com"], callback_url=f"http://127.0.0.1:{port}/hook"
    )
    alice.approvals.approve(approval.id)
    _until(lambda: admin.approvals.deliveries(approval.id)[0].attempts >= 1)
    process.kill9()
    with Receiver(port) as receiver:
        process.start()
        (call,) = receiver.wait_for(1, timeout=20)
    assert call.event["data"]["id"] == approval.id


def test_a_send_cut_off_by_kill_is_sent_again_after_the_lease(process):
    with Receiver() as receiver:
        receiver.delay = 0.8  # the server is mid-send when it dies
        process.start()
        admin, alice = _setup(process.url)
        approval = admin.approvals.create(
            title="t", approvers=["alice@example.com"], callback_url=receiver.url
        )
        alice.approvals.approve(approval.id)
        receiver.wait_started(1)
        process.kill9()
        receiver.delay = 0
        process.start()
        calls = receiver.wait_for(1, timeout=30)
    assert {c.event["data"]["id"] for c in calls} == {approval.id}


def test_kills_in_the_middle_of_traffic_lose_no_acknowledged_decision_or_callback(process):
    """A client keeps creating and approving while the server is killed at random moments.

    Every approval whose decision was acknowledged must be settled afterwards, and every
    settled approval must reach the receiver (possibly twice, with the same webhook-id).
    """
    rng = random.Random(7)
    acknowledged: set[str] = set()
    stop = threading.Event()
    with Receiver() as receiver:
        process.start()
        admin, alice = _setup(process.url)

        def traffic() -> None:
            while not stop.is_set():
                try:
                    approval = admin.approvals.create(
                        title="t", approvers=["alice@example.com"], callback_url=receiver.url
                    )
                    alice.approvals.approve(approval.id)
                    acknowledged.add(approval.id)
                except errors.SignoffError:
                    time.sleep(0.05)  # the server is down: try again, like a pipeline would

        client = threading.Thread(target=traffic)
        client.start()
        try:
            for _round in range(4):
                time.sleep(rng.uniform(0.3, 1.2))  # let traffic run: this is the chaos, not a sync
                process.kill9()
                process.start()
            _until(lambda: len(acknowledged) >= 10)
        finally:
            stop.set()
            client.join(timeout=30)
        settled = {a.id for a in admin.approvals.iterate(status="approved", limit=200)}
        assert acknowledged <= settled
        calls = receiver.wait_for(len(settled), timeout=60)
        _until(lambda: {c.event["data"]["id"] for c in receiver.received} >= settled, timeout=60)
    delivered = {c.event["data"]["id"] for c in receiver.received}
    assert delivered == settled
    by_id: dict[str, set[str]] = {}
    for call in receiver.received:
        by_id.setdefault(call.event["data"]["id"], set()).add(call.headers["webhook-id"])
    assert all(len(webhook_ids) == 1 for webhook_ids in by_id.values()), (
        "a retry changed its webhook-id"
    )
    assert len(calls) >= len(settled)
    assert admin.people.verify_audit().ok


def _until(condition, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_client_requests_during_a_crash_fail_cleanly(process):
    process.start()
    admin, _alice = _setup(process.url)
    process.kill9()
    with pytest.raises(errors.ServerUnreachable):
        admin.approvals.cancel("ap_whatever")
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{process.url}/healthz")
