"""The in-process worker settles approvals at their deadline and when heartbeats stop."""

from __future__ import annotations

import time

import pytest

import signoff
from tests.conftest import RunningServer
from tests.factories import ADMIN_KEY
from tests.receivers import Receiver


@pytest.fixture
def pipeline(server: RunningServer) -> signoff.Client:
    admin = signoff.Client(server.url, server.admin_key)
    admin.people.create_user("alice@example.com")
    admin.people.create_user("pipeline@example.com")
    return signoff.Client(server.url, admin.people.create_key(user="pipeline@example.com").key)


def test_a_deadline_applies_on_timeout_wakes_waiters_and_calls_back(server, pipeline):
    with Receiver() as receiver:
        approval = pipeline.approvals.create(
            title="t",
            approvers=["alice@example.com"],
            timeout=1,
            on_timeout="approve",
            callback_url=receiver.url,
        )
        settled = approval.wait(timeout=15)
        (call,) = receiver.wait_for(1)
    assert settled.status == "approved"
    assert settled.outcome == {"status": "approved", "reason": "timeout"}
    assert call.event["data"]["outcome"]["reason"] == "timeout"
    admin = signoff.Client(server.url, ADMIN_KEY)
    actions = [e.action for e in admin.people.audit(object_id=approval.id).items]
    assert actions == ["approval.settle", "approval.expire", "approval.create"]


@pytest.mark.parametrize("settings_overrides", [{"worker_max_sleep_seconds": 120}], indirect=True)
def test_a_sooner_deadline_wakes_a_sleeping_scheduler(pipeline):
    # The scheduler sleeps until the earliest deadline (here: up to 120 s); a new approval
    # due sooner must cut that sleep short, and a later one must not stop it from waking.
    later = pipeline.approvals.create(title="later", approvers=["alice@example.com"], timeout=3600)
    time.sleep(0.3)  # the scheduler is asleep now, until the one-hour deadline or 120 s
    started = time.monotonic()
    sooner = pipeline.approvals.create(title="sooner", approvers=["alice@example.com"], timeout=1)
    settled = sooner.wait(timeout=15)
    assert settled.outcome == {"status": "rejected", "reason": "timeout"}
    assert time.monotonic() - started < 10
    assert later.refresh().status == "pending"


def test_heartbeats_keep_an_approval_alive_and_silence_expires_it(pipeline):
    approval = pipeline.approvals.create(
        title="t", approvers=["alice@example.com"], heartbeat_timeout=1
    )
    beating_until = time.monotonic() + 2.5
    while time.monotonic() < beating_until:  # 2.5 s of heartbeats, longer than the timeout
        assert approval.heartbeat().status == "pending"
        time.sleep(0.3)
    settled = approval.wait(timeout=15)
    assert settled.outcome == {"status": "expired", "reason": "heartbeat"}
