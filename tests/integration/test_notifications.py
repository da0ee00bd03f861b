"""Failures are visible on the approval: a receiver that is down shows in the approval's
``notifications`` (API, SDK, CLI) with its attempts counting up, and clears once it is back;
a dead channel shows as dead; an approval lists all its deliveries by purpose; and a channel
that hangs delays neither other channels nor the decision."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

import signoff
from tests.conftest import RunningServer
from tests.receivers import Receiver, free_port


@pytest.fixture
def people(server: RunningServer) -> dict[str, signoff.Client]:
    admin = signoff.Client(server.url, server.admin_key)
    for email in ("pipeline@example.com", "alice@example.com"):
        admin.people.create_user(email)
    clients = {
        name: signoff.Client(server.url, admin.people.create_key(user=f"{name}@example.com").key)
        for name in ("pipeline", "alice")
    }
    return clients | {"admin": admin}


def until(condition: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, f"{what} did not happen in {timeout}s"
        time.sleep(0.05)
    return found


def failing(client: signoff.Client, approval_id: str, at_least: int = 1) -> Any:
    notifications = client.approvals.get(approval_id).notifications or []
    return notifications if sum(n.attempts for n in notifications) >= at_least else None


def test_a_receiver_that_is_down_shows_on_the_approval_until_it_is_back(people, server):
    port = free_port()
    approval = people["pipeline"].approvals.create(
        title="t", approvers=["alice@example.com"], callback_url=f"http://127.0.0.1:{port}/cb"
    )
    assert people["pipeline"].approvals.get(approval.id).notifications == []
    people["alice"].approvals.approve(approval.id)
    (first,) = until(lambda: failing(people["pipeline"], approval.id), "a failed attempt")
    (later,) = until(lambda: failing(people["pipeline"], approval.id, 3), "more attempts")
    assert (later.purpose, later.target_kind, later.status) == ("callback", "callback", "failing")
    assert later.target.startswith(f"http://127.0.0.1:{port}/…#")
    assert later.failing_since == first.failing_since
    assert later.attempts > first.attempts
    assert "ConnectError" in later.last_error
    shown = subprocess.run(
        [sys.executable, "-m", "signoff", "approvals", "show", approval.id],
        env=os.environ | {"SIGNOFF_URL": server.url, "SIGNOFF_API_KEY": server.admin_key},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert f"callback delivery to http://127.0.0.1:{port}/…#" in shown
    assert "failing since" in shown
    assert " attempts (last error: ConnectError" in shown
    with Receiver(port=port) as receiver:
        receiver.wait_for(1)
        until(lambda: people["pipeline"].approvals.get(approval.id).notifications == [], "clear")
    (delivered,) = people["pipeline"].approvals.deliveries(approval.id)
    assert (delivered.purpose, delivered.status) == ("callback", "delivered")


@pytest.mark.parametrize("settings_overrides", [{"delivery_max_age_seconds": 0.3}], indirect=True)
def test_a_dead_callback_shows_as_dead(people):
    approval = people["pipeline"].approvals.create(
        title="t", approvers=["alice@example.com"], callback_url=f"http://127.0.0.1:{free_port()}/"
    )
    people["alice"].approvals.approve(approval.id)
    (dead,) = until(
        lambda: [n for n in failing(people["alice"], approval.id) or [] if n.status == "dead"],
        "the callback to die",
    )
    assert dead.purpose == "callback"
    (listed,) = people["pipeline"].approvals.deliveries(approval.id, purpose="callback")
    assert listed.status == "dead"


def test_an_approval_lists_its_subscriptions_deliveries_even_once_deleted(people):
    with Receiver() as hook:
        people["admin"].subscriptions.create(
            "all", kind="webhook", target=hook.url + "?token=s3cr3t"
        )
        approval = people["pipeline"].approvals.create(title="t", approvers=["alice@example.com"])
        hook.wait_for(1)
    people["admin"].subscriptions.delete("all")
    (listed,) = people["pipeline"].approvals.deliveries(approval.id)
    assert (listed.purpose, listed.target_kind, listed.status) == (
        "subscription",
        "webhook",
        "delivered",
    )
    assert "s3cr3t" not in listed.target
    assert people["pipeline"].approvals.deliveries(approval.id, purpose="callback") == []
    (seen_by_admin,) = people["admin"].approvals.deliveries(approval.id)
    assert seen_by_admin.target == hook.url + "?token=s3cr3t"


def test_a_channel_that_hangs_delays_neither_the_decision_nor_other_channels(people):
    with Receiver() as hanging, Receiver() as fast:
        hanging.delay = 5  # longer than the delivery timeout (2s)
        port = hanging.httpd.server_address[1]
        people["admin"].subscriptions.create(
            "hangs", kind="apprise", target=f"json://127.0.0.1:{port}/x"
        )
        first = people["pipeline"].approvals.create(title="one", approvers=["alice@example.com"])
        hanging.wait_started(1)  # the apprise send is stuck in the hanging receiver
        second = people["pipeline"].approvals.create(
            title="two", approvers=["alice@example.com"], callback_url=fast.url
        )
        started = time.monotonic()
        people["alice"].approvals.approve(first.id)
        people["alice"].approvals.approve(second.id)
        decided = time.monotonic() - started
        (call,) = fast.wait_for(1, timeout=1.5)
        assert json.loads(call.body)["data"]["id"] == second.id
    assert decided < 1.0, decided
