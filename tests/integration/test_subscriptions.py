"""Subscriptions end to end on a real server: a webhook subscribed over HTTP gets exactly the
events its filter matches, signed; email subscribers get a readable message; a receiver that
was down gets everything once it is back; internal events never leave; the SDK's sync and
async clients manage subscriptions."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

import signoff
from signoff import errors
from signoff.store.engine import Database
from signoff.store.tables import DeliveryRow
from tests.conftest import RunningServer, smtp_settings
from tests.mailbox import Mailbox, html_of, text_of
from tests.receivers import Receiver, free_port


@pytest.fixture
def settings_overrides(mailbox: Mailbox) -> dict[str, object]:
    return smtp_settings(mailbox)


@pytest.fixture
def admin(server: RunningServer) -> Iterator[httpx.Client]:
    headers = {"authorization": f"Bearer {server.admin_key}"}
    with httpx.Client(base_url=server.url, headers=headers) as client:
        yield client


@pytest.fixture
def sdk(server: RunningServer) -> Iterator[signoff.Client]:
    with signoff.Client(server.url, server.admin_key) as client:
        client.people.create_user("alice@example.com")
        yield client


@pytest.fixture
def alice(server: RunningServer, sdk: signoff.Client) -> Iterator[signoff.Client]:
    with signoff.Client(server.url, sdk.people.create_key(user="alice@example.com").key) as client:
        yield client


def subscription_deliveries(server: RunningServer) -> list[DeliveryRow]:
    db = Database(server.settings.database_url, pool_size=1)
    try:
        with db.read() as session:
            query = select(DeliveryRow).where(DeliveryRow.subscription_id.is_not(None))
            return list(session.scalars(query.order_by(DeliveryRow.id)))
    finally:
        db.dispose()


def wait_until(condition, what: str, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, f"{what} did not happen in {timeout}s"
        time.sleep(0.05)
    return found


def test_a_webhook_subscribed_over_http_gets_exactly_the_matching_signed_events(admin, sdk, server):
    pattern = {"type": ["approval.created"], "data": {"labels": [{"prefix": "prod"}]}}
    with Receiver() as receiver:
        answer = admin.post(
            "/v1/subscriptions",
            json={
                "name": "prod-hooks",
                "kind": "webhook",
                "target": receiver.url,
                "filter": pattern,
            },
        )
        assert answer.status_code == 201, answer.text
        made = {}
        for labels in (["prod-eu"], ["nightly"], ["prod", "nightly"], []):
            approval = sdk.approvals.create(
                title=f"labels {labels}",
                approvers=["alice@example.com"],
                labels=labels,
                callback_url=receiver.url + "?token=for-the-requester",
            )
            made[tuple(labels)] = approval
        calls = receiver.wait_for(2)
    written = subscription_deliveries(server)  # every event is written: no others were matched
    assert len(written) == 2
    secret = sdk.people.webhook_secret()
    received = [signoff.webhooks.verify(call.body, call.headers, secret) for call in calls]
    assert {event["subject"] for event in received} == {
        made[("prod-eu",)].id,
        made[("prod", "nightly")].id,
    }
    assert {call.headers["webhook-id"] for call in calls} == {d.id for d in written}
    for event in received:
        assert set(event) == {"id", "type", "version", "timestamp", "subject", "actor", "data"}
        assert (event["type"], event["version"], event["data"]["status"]) == (
            "approval.created",
            1,
            "pending",
        )
        assert "callback_url" not in event["data"]  # the requester's, not the subscriber's
        assert "emailed" not in event["data"]  # people's addresses stay in signoff


def test_an_email_subscription_mails_each_recipient_a_readable_summary(
    admin, sdk, alice, mailbox, server
):
    sdk.subscriptions.create(
        "owners-mail",
        kind="email",
        target=["ops@example.com", "Dana@Example.com"],
        filter={"type": ["approval.settled"]},
    )
    approval = sdk.approvals.create(title="Apply batch 42?", approvers=["alice@example.com"])
    alice.approvals.reject(approval.id, comment="6.4% is above what we agreed")
    for address in ("ops@example.com", "dana@example.com"):
        [message] = mailbox.wait_for(address)
        assert message["Subject"] == "[signoff] approval.settled: Apply batch 42? (rejected)"
        text = text_of(message)
        assert "Status: pending -> rejected" in text
        assert "Outcome: rejected, by alice@example.com: 6.4% is above what we agreed" in text
        assert f"{server.url}/approvals/{approval.id}" in text
        assert f'href="{server.url}/approvals/{approval.id}"' in html_of(message)
    to_subscribers = [m for m in mailbox.messages if m["To"] != "alice@example.com"]
    assert len(to_subscribers) == 2  # settled only: created and decided are not asked for
    [to_approver] = [m for m in mailbox.messages if m["To"] == "alice@example.com"]
    assert to_approver["Subject"] == "Decision needed: Apply batch 42?"  # her own, with her links


def test_a_receiver_that_was_down_gets_the_events_once_it_is_back(sdk, alice, server):
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    sdk.subscriptions.create(
        "ops", kind="webhook", target=url, filter={"type": ["approval.settled"]}
    )
    settled = []
    for verdict in ("approve", "reject"):
        approval = sdk.approvals.create(title=verdict, approvers=["alice@example.com"])
        alice.approvals.decide(approval.id, verdict)
        settled.append(approval.id)
    wait_until(
        lambda: [d.attempts >= 2 for d in subscription_deliveries(server)] == [True, True],
        "two failed attempts at each delivery",
    )
    assert {d.status for d in subscription_deliveries(server)} == {"pending"}
    with Receiver(port=port) as receiver:
        calls = receiver.wait_for(2)
    assert sorted(call.event["subject"] for call in calls) == sorted(settled)
    wait_until(
        lambda: [d.status for d in subscription_deliveries(server)] == ["delivered"] * 2,
        "both deliveries recorded as delivered",
    )


def test_a_subscription_never_receives_an_invitation_whatever_its_filter(
    admin, sdk, mailbox, server
):
    refused = admin.post(
        "/v1/subscriptions",
        json={
            "name": "invites",
            "kind": "webhook",
            "target": "http://127.0.0.1:9/hook",
            "filter": {"type": ["invitation.sent"]},
        },
    )
    assert refused.status_code == 422
    assert refused.json()["code"] == "invalid_input"
    assert "invitation.sent is internal to signoff" in refused.json()["detail"]
    assert refused.json()["field"] == "filter.type[0]"
    with Receiver() as receiver:
        sdk.subscriptions.create("everything", kind="webhook", target=receiver.url)
        sdk.people.invite("eve@example.com")
        mailbox.wait_for("eve@example.com")  # the invitation event was written and delivered
        sdk.approvals.create(title="after the invitation", approvers=["alice@example.com"])
        calls = receiver.wait_for(1)
    assert [call.event["type"] for call in calls] == ["approval.created"]
    assert all("link_nonce" not in call.body.decode() for call in calls)
    assert len(subscription_deliveries(server)) == 1


def test_slack_deliveries_fail_clearly_without_a_bot_token(sdk, server):
    sdk.subscriptions.create("chat", kind="slack", target="#ml-approvals")
    sdk.approvals.create(title="t", approvers=["alice@example.com"])
    wait_until(
        lambda: [bool(d.last_error) for d in subscription_deliveries(server)] == [True],
        "the slack attempt",
    )
    failed = subscription_deliveries(server)
    assert [d.last_error for d in failed] == [
        "Slack is not configured (SIGNOFF_SLACK_BOT_TOKEN is unset)"
    ]
    assert {d.status for d in failed} == {"pending"}  # retried like any failure


def test_the_sync_sdk_manages_subscriptions_and_its_errors_are_typed(sdk):
    made = sdk.subscriptions.create(
        "ops",
        kind="webhook",
        target="https://hooks.example.com/x",
        filter={"type": ["approval.settled"]},
    )
    assert (made.name, made.kind, made.enabled) == ("ops", "webhook", True)
    assert sdk.subscriptions.get("ops") == made
    assert [s.name for s in sdk.subscriptions.list().items] == ["ops"]
    off = sdk.subscriptions.update("ops", enabled=False)
    assert (off.enabled, off.filter) == (False, made.filter)
    mail = sdk.subscriptions.replace("ops", kind="email", target=["a@example.com"])
    assert (mail.kind, mail.target, mail.filter, mail.enabled) == (
        "email",
        ["a@example.com"],
        {},
        True,
    )
    with pytest.raises(errors.DuplicateName):
        sdk.subscriptions.create("ops", kind="slack", target="#x")
    with pytest.raises(errors.InvalidInput, match="public addresses") as refused:
        sdk.subscriptions.create("private", kind="webhook", target="http://10.1.2.3/hook")
    assert refused.value.extra["field"] == "target"
    sdk.subscriptions.delete("ops")
    with pytest.raises(errors.SubscriptionNotFound):
        sdk.subscriptions.get("ops")


async def test_the_async_sdk_manages_subscriptions_too(server):
    async with signoff.AsyncClient(server.url, server.admin_key) as client:
        made = await client.subscriptions.create("ops", kind="slack", target="#ml-approvals")
        assert (await client.subscriptions.get("ops")) == made
        assert [s.name for s in (await client.subscriptions.list()).items] == ["ops"]
        assert not (await client.subscriptions.update("ops", enabled=False)).enabled
        replaced = await client.subscriptions.replace("ops", kind="slack", target="#other")
        assert (replaced.target, replaced.enabled) == ("#other", True)
        await client.subscriptions.delete("ops")
        with pytest.raises(errors.SubscriptionNotFound):
            await client.subscriptions.delete("ops")
