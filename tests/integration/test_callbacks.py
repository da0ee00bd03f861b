"""Settlement callbacks: signed per Standard Webhooks, retried with backoff, recorded."""

from __future__ import annotations

import time

import httpx
import pytest

import signoff
from signoff import errors
from tests.conftest import RunningServer
from tests.receivers import Receiver


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


def test_settlement_is_called_back_with_a_valid_signature(people):
    secret = people["admin"].people.webhook_secret()
    with Receiver() as receiver:
        approval = people["pipeline"].approvals.create(
            title="t", approvers=["alice@example.com"], callback_url=receiver.url
        )
        people["alice"].approvals.approve(approval.id, comment="go")
        (call,) = receiver.wait_for(1)
    event = signoff.webhooks.verify(call.body, call.headers, secret)
    assert event["type"] == "approval.settled"
    assert event["data"]["id"] == approval.id
    assert event["data"]["status"] == "approved"
    assert event["data"]["outcome"]["comment"] == "go"
    assert call.headers["webhook-id"].startswith("msg_")


def test_a_tampered_or_foreign_signature_does_not_verify(people):
    secret = people["admin"].people.webhook_secret()
    with Receiver() as receiver:
        approval = people["pipeline"].approvals.create(
            title="t", approvers=["alice@example.com"], callback_url=receiver.url
        )
        people["alice"].approvals.reject(approval.id)
        (call,) = receiver.wait_for(1)
    with pytest.raises(errors.InvalidSignature):
        signoff.webhooks.verify(call.body.replace(b"rejected", b"approved"), call.headers, secret)
    with pytest.raises(errors.InvalidSignature):
        signoff.webhooks.verify(call.body, call.headers, "whsec_" + "A" * 44)


def test_failed_callbacks_are_retried_with_the_same_webhook_id_and_every_attempt_recorded(people):
    with Receiver() as receiver:
        receiver.fail_next = 3
        approval = people["pipeline"].approvals.create(
            title="t", approvers=["alice@example.com"], callback_url=receiver.url
        )
        people["alice"].approvals.approve(approval.id)
        (call,) = receiver.wait_for(1)
    deliveries = _deliveries(people["pipeline"], approval.id)
    assert deliveries[0]["status"] == "delivered"
    assert deliveries[0]["attempts"] == 4
    assert deliveries[0]["id"] == call.headers["webhook-id"]


def test_a_callback_that_never_succeeds_is_dead_lettered_after_the_maximum_age(settings, tmp_path):
    from tests.conftest import _ThreadServer

    settings.delivery_max_age_seconds = 1.0
    running = _ThreadServer(settings)
    running.start()
    try:
        admin = signoff.Client(running.url, settings.admin_api_key.get_secret_value())
        admin.people.create_user("alice@example.com")
        alice = signoff.Client(running.url, admin.people.create_key(user="alice@example.com").key)
        with Receiver() as receiver:
            receiver.fail_next = 10_000
            approval = admin.approvals.create(
                title="t", approvers=["alice@example.com"], callback_url=receiver.url
            )
            alice.approvals.approve(approval.id)
            deadline = time.monotonic() + 15
            while (found := _deliveries(admin, approval.id)[0])["status"] == "pending":
                assert time.monotonic() < deadline, found
                time.sleep(0.05)
        assert found["status"] == "dead"
        assert found["attempts"] >= 2
        assert found["last_error"] == "HTTP 503"
    finally:
        running.stop()


def test_a_slow_receiver_does_not_hold_up_other_callbacks(people):
    with Receiver() as slow, Receiver() as fast:
        slow.delay = 1.5
        first = people["pipeline"].approvals.create(
            title="slow", approvers=["alice@example.com"], callback_url=slow.url
        )
        people["alice"].approvals.approve(first.id)
        second = people["pipeline"].approvals.create(
            title="fast", approvers=["alice@example.com"], callback_url=fast.url
        )
        started = time.monotonic()
        people["alice"].approvals.approve(second.id)
        fast.wait_for(1)
        assert time.monotonic() - started < 1.0
        slow.wait_for(1)


def _deliveries(client: signoff.Client, approval_id: str) -> list[dict[str, object]]:
    return [d.model_dump() for d in client.approvals.deliveries(approval_id)]


def test_deliveries_endpoint_needs_access(people, server):
    approval = people["pipeline"].approvals.create(title="t", approvers=["alice@example.com"])
    outsider = httpx.get(f"{server.url}/v1/approvals/{approval.id}/deliveries")
    assert outsider.status_code == 401


@pytest.mark.parametrize("settings_overrides", [{"webhook_allowed_networks": ""}], indirect=True)
def test_a_callback_to_a_private_address_is_refused_unless_allowed(server: RunningServer):
    with httpx.Client(
        base_url=server.url, headers={"authorization": f"Bearer {server.admin_key}"}
    ) as admin:
        admin.post("/v1/users", json={"email": "alice@example.com"}).raise_for_status()
        refused = admin.post(
            "/v1/approvals",
            json={
                "title": "t",
                "approvers": ["alice@example.com"],
                "callback_url": "http://169.254.169.254/latest/meta-data/",
            },
        )
    assert refused.status_code == 422
    assert refused.json()["field"] == "callback_url"
    assert "SIGNOFF_WEBHOOK_ALLOWED_NETWORKS" in refused.json()["detail"]


OLD_SECRET = "whsec_" + "b2xkIHNlY3JldCBvZiB0aGUgdGVzdHMgMDEyMzQ1Njc="
NEW_SECRET = "whsec_" + "bmV3IHNlY3JldCBvZiB0aGUgdGVzdHMgMDEyMzQ1Njc="


@pytest.mark.parametrize(
    "settings_overrides",
    [{"webhook_secret": NEW_SECRET, "webhook_previous_secret": OLD_SECRET}],
    indirect=True,
)
def test_during_a_rotation_receivers_verify_with_the_old_secret_or_the_new(people):
    assert people["admin"].people.webhook_secret() == NEW_SECRET
    with Receiver() as receiver:
        approval = people["pipeline"].approvals.create(
            title="t", approvers=["alice@example.com"], callback_url=receiver.url
        )
        people["alice"].approvals.approve(approval.id)
        (call,) = receiver.wait_for(1)
    assert len(call.headers["webhook-signature"].split(" ")) == 2
    for secret in (OLD_SECRET, NEW_SECRET):  # a receiver not moved yet, and one that has
        assert signoff.webhooks.verify(call.body, call.headers, secret)["subject"] == approval.id
    with pytest.raises(errors.InvalidSignature):  # and one with neither
        signoff.webhooks.verify(call.body, call.headers, "whsec_" + "A" * 44)


@pytest.mark.parametrize(
    "settings_overrides",
    [{"webhook_secret": NEW_SECRET, "webhook_previous_secret": OLD_SECRET}],
    indirect=True,
)
def test_admins_see_the_previous_secret_while_the_rotation_lasts(server):
    answer = httpx.get(
        f"{server.url}/v1/webhook-secret",
        headers={"authorization": f"Bearer {server.admin_key}"},
    )
    assert answer.json() == {"secret": NEW_SECRET, "previous": [OLD_SECRET]}
