"""Slack end to end on a real server and worker, against a local Slack Web API that checks
every request as Slack would receive it (``tests/slack_api.py``): an approval posted with
buttons, clicks signed as Slack signs them deciding under the policy, the message updated
until its buttons go, refusals told to the clicker alone, and a Slack that is down or
refusing delaying nothing else."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

import signoff
from signoff.store.engine import Database
from signoff.store.tables import AuditEntryRow, DeliveryRow, SlackUserRow
from tests.conftest import RunningServer
from tests.receivers import Receiver, free_port
from tests.slack_api import TEAM_ID, Message, SlackApi, interaction, signed_headers

ALICE_SLACK = "U0ALICE01"
FORM = {"type": "object", "properties": {"ticket": {"type": "string"}}}  # nothing required
BOB_SLACK = "U0BOB0001"


@pytest.fixture
def slack_api() -> Iterator[SlackApi]:
    with SlackApi() as api:
        api.users = {ALICE_SLACK: "alice@example.com", BOB_SLACK: "bob@example.com"}
        yield api
    assert api.violations == []  # every request was one Slack would take


REFUSING = f"http://127.0.0.1:{free_port()}/api/"  # nothing listens there


@pytest.fixture
def settings_overrides(slack_api: SlackApi, request: pytest.FixtureRequest) -> dict[str, Any]:
    return slack_api.settings() | getattr(request, "param", {})


@pytest.fixture
def sdk(server: RunningServer) -> Iterator[signoff.Client]:
    with signoff.Client(server.url, server.admin_key) as client:
        client.people.create_user("alice@example.com")
        client.people.create_user("bob@example.com")
        client.people.create_user("carol@example.com")
        client.subscriptions.create(
            "approvals-slack",
            kind="slack",
            target="#approvals",
            filter={"type": ["approval.created"]},
        )
        yield client


@pytest.fixture
def web(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url) as client:
        yield client


def click(
    web: httpx.Client,
    api: SlackApi,
    message: Any,
    user_id: str,
    action: str = "signoff_approve",
    *,
    retry: int | None = None,
    team_id: str = TEAM_ID,
) -> httpx.Response:
    [button] = [b for b in message.buttons if b["action_id"] == action]
    body, headers = interaction(
        user_id=user_id,
        action_id=action,
        value=button.get("value", ""),
        channel=message.channel,
        message_ts=message.ts,
        response_url=api.response_url(len(api.responses) + 1),
        team_id=team_id,
    )
    if retry is not None:
        headers |= {"x-slack-retry-num": str(retry), "x-slack-retry-reason": "http_timeout"}
    return web.post("/slack/interactions", content=body, headers=headers)


def ephemeral(api: SlackApi, count: int) -> list[dict[str, Any]]:
    found = api.wait_for(lambda: len(api.responses) >= count, f"{count} ephemeral answer(s)")
    assert found
    replies = [call.body for call in api.responses]
    for reply in replies:
        assert reply["response_type"] == "ephemeral"
        assert reply["replace_original"] is False
    return replies


def rows(server: RunningServer, query: Any) -> list[Any]:
    db = Database(server.settings.database_url, pool_size=1)
    try:
        with db.read() as session:
            return list(session.scalars(query))
    finally:
        db.dispose()


def test_an_approval_is_posted_with_buttons_that_carry_its_id_and_never_its_token(
    sdk, slack_api, server
):
    approval = sdk.approvals.create(
        title="Promote churn-model v7 to prod?",
        body="Ping <!channel> & see <https://evil.example|this> *now*",
        context={"auc": 0.91, "owner": "<@U0EVIL>"},
        approvers=["alice@example.com", "bob@example.com"],
    )
    [message] = slack_api.posted()
    [post] = slack_api.calls_of("chat.postMessage")
    assert post.headers["authorization"].startswith("Bearer xoxb-")
    assert post.body["channel"] == "#approvals"
    assert post.body["text"] == "Approval requested: Promote churn-model v7 to prod?"
    assert [b["type"] for b in message.blocks] == [
        "header",
        "section",
        "section",
        "context",
        "actions",
    ]
    assert message.blocks[0]["text"] == {
        "type": "plain_text",
        "text": "Promote churn-model v7 to prod?",
        "emoji": False,
    }
    body = message.blocks[1]["text"]["text"]
    assert body == "Ping &lt;!channel&gt; &amp; see &lt;https://evil.example|this&gt; *now*"
    assert "&lt;@U0EVIL&gt;" in message.all_text
    assert "<@U0EVIL>" not in message.all_text
    assert "<!date^" in message.blocks[3]["elements"][0]["text"]
    approve, reject, open_link = message.buttons
    assert (approve["action_id"], approve["style"], approve["value"]) == (
        "signoff_approve",
        "primary",
        approval.id,
    )
    assert (reject["action_id"], reject["style"], reject["value"]) == (
        "signoff_reject",
        "danger",
        approval.id,
    )
    assert open_link["url"] == f"{server.url}/approvals/{approval.id}"
    assert approval.token not in str(slack_api.calls)
    assert slack_api.violations == []


def test_a_click_found_by_email_approves_and_the_message_shows_who_without_buttons(
    sdk, slack_api, server, web
):
    approval = sdk.approvals.create(title="Apply batch 42?", approvers=["alice@example.com"])
    [message] = slack_api.posted()
    as_posted = Message(message.channel, message.ts, message.text, message.blocks)
    answer = click(web, slack_api, message, ALICE_SLACK)
    assert answer.status_code == 200
    assert answer.content == b""
    assert sdk.approvals.get(approval.id).wait(timeout=10).status == "approved"
    slack_api.wait_for(lambda: not message.buttons, "the buttons removed")
    assert "*Approved* by alice@example.com" in message.all_text
    assert message.text == "Approved: Apply batch 42?"
    [reply] = ephemeral(slack_api, 1)
    assert reply["text"].startswith("You approved *Apply batch 42?*")
    [info] = slack_api.calls_of("users.info")
    assert info.body["user"] == [ALICE_SLACK]
    [link] = rows(server, select(SlackUserRow))
    assert (link.slack_user_id, link.source) == (ALICE_SLACK, "email")
    decided = sdk.approvals.get(approval.id).decisions[0]
    assert (decided.user, decided.channel) == ("alice@example.com", "slack")
    [audit] = rows(server, select(AuditEntryRow).where(AuditEntryRow.action == "approval.decide"))
    assert audit.after["slack_user_id"] == ALICE_SLACK
    assert audit.actor == f"user:{decided.user_id}"
    click(web, slack_api, as_posted, ALICE_SLACK)  # an old copy of the message: nothing changes
    assert ephemeral(slack_api, 2)[1]["text"] == (
        "This approval is already approved; nothing more can be decided."
    )
    assert len(slack_api.calls_of("users.info")) == 1  # the link was kept
    assert slack_api.violations == []


def test_each_decision_updates_the_message_until_the_quorum_settles_it(sdk, slack_api, web):
    approval = sdk.approvals.create(
        title="Two keys", approvers=["alice@example.com", "bob@example.com"], policy={"quorum": 2}
    )
    [message] = slack_api.posted()
    click(web, slack_api, message, ALICE_SLACK)
    slack_api.wait_for(lambda: "1 of 2 approvals" in message.all_text, "the progress shown")
    assert "alice@example.com approved" in message.all_text
    assert len(message.buttons) == 3  # still open to bob
    click(web, slack_api, message, BOB_SLACK)
    assert sdk.approvals.get(approval.id).wait(timeout=10).status == "approved"
    slack_api.wait_for(lambda: not message.buttons, "the buttons removed")
    assert "alice@example.com, bob@example.com" in message.all_text


def test_a_settlement_updates_the_message_whatever_decided_it(sdk, slack_api, server):
    approval = sdk.approvals.create(title="Cancel me", approvers=["alice@example.com"])
    [message] = slack_api.posted()
    sdk.approvals.cancel(approval.id, reason="not needed")
    slack_api.wait_for(lambda: not message.buttons, "the buttons removed")
    assert "*Canceled*" in message.all_text
    with signoff.Client(server.url, sdk.people.create_key(user="alice@example.com").key) as alice:
        second = sdk.approvals.create(title="Reject me", approvers=["alice@example.com"])
        [_, message] = slack_api.posted(2)
        alice.approvals.reject(second.id, comment="no")
    slack_api.wait_for(lambda: not message.buttons, "the buttons removed")
    assert "*Rejected* by alice@example.com" in message.all_text
    assert ": no" in message.all_text


def test_an_explicit_link_wins_over_the_profile_email(sdk, slack_api, server, web):
    admin = httpx.Client(
        base_url=server.url, headers={"authorization": f"Bearer {server.admin_key}"}
    )
    linked = admin.put("/v1/users/carol@example.com/slack", json={"slack_user_id": BOB_SLACK})
    assert linked.status_code == 200, linked.text
    assert linked.json() == [{"slack_user_id": BOB_SLACK, "source": "explicit"}]
    approval = sdk.approvals.create(title="Carol's call", approvers=["carol@example.com"])
    [message] = slack_api.posted()
    click(web, slack_api, message, BOB_SLACK)  # Slack says bob@, the admin said carol
    assert sdk.approvals.get(approval.id).wait(timeout=10).decisions[0].user == "carol@example.com"
    assert slack_api.calls_of("users.info") == []
    assert admin.delete("/v1/users/carol@example.com/slack").status_code == 204
    assert admin.get("/v1/users/carol@example.com/slack").json() == []
    assert sdk.people.link_slack_user("carol@example.com", "U0CAROL01")[0].source == "explicit"
    assert [link.slack_user_id for link in sdk.people.slack_links("carol@example.com")] == [
        "U0CAROL01"
    ]
    sdk.people.unlink_slack_users("carol@example.com")
    assert sdk.people.slack_links("carol@example.com") == []
    bad = admin.put("/v1/users/carol@example.com/slack", json={"slack_user_id": "bob"})
    assert bad.status_code == 422
    assert bad.json()["code"] == "invalid_input"


@pytest.mark.parametrize(
    ("who", "why"),
    [
        ("U0STRANGER", "Your Slack account is not linked to a signoff user"),
        (BOB_SLACK, "You are not an approver of this approval"),
    ],
)
def test_a_click_by_someone_who_may_not_decide_is_told_why_and_decides_nothing(
    sdk, slack_api, web, who, why
):
    approval = sdk.approvals.create(title="Alice only", approvers=["alice@example.com"])
    [message] = slack_api.posted()
    assert click(web, slack_api, message, who).status_code == 200
    [reply] = ephemeral(slack_api, 1)
    assert reply["text"].startswith(why)
    assert sdk.approvals.get(approval.id).status == "pending"
    assert sdk.approvals.get(approval.id).decisions == []
    assert len(message.buttons) == 3


def test_the_requester_and_a_policy_that_needs_a_comment_are_sent_to_the_page(
    sdk, slack_api, server, web
):
    key = sdk.people.create_key(user="alice@example.com").key
    with signoff.Client(server.url, key) as alice:
        own = alice.approvals.create(title="My own", approvers=["alice@example.com"])
    needs_comment = sdk.approvals.create(
        title="Say why", approvers=["alice@example.com"], policy={"comment_required": True}
    )
    needs_form = sdk.approvals.create(
        title="Fill in", approvers=["alice@example.com"], policy={"form": FORM}
    )
    by_id = {m.buttons[0]["value"]: m for m in slack_api.posted(3)}  # posted in any order
    first, second, third = by_id[own.id], by_id[needs_comment.id], by_id[needs_form.id]
    click(web, slack_api, first, ALICE_SLACK)
    click(web, slack_api, second, ALICE_SLACK, "signoff_reject")
    click(web, slack_api, third, ALICE_SLACK)
    three, two, one = sorted(ephemeral(slack_api, 3), key=lambda reply: reply["text"])
    assert three["text"].startswith("Approving this asks for a few details."), (one, two, three)
    assert f"{server.url}/approvals/{needs_form.id}|" in three["text"]
    assert sdk.approvals.get(needs_form.id).decisions == []
    assert one["text"] == (
        "You asked for this approval, and its policy does not let requesters decide."
    )
    assert "needs the approval's page" in two["text"]
    assert f"<{server.url}/approvals/{needs_comment.id}|Open it in signoff>" in two["text"]
    assert sdk.approvals.get(own.id).decisions == []
    assert sdk.approvals.get(needs_comment.id).decisions == []


def test_slack_retries_and_double_clicks_decide_once(sdk, slack_api, web):
    approval = sdk.approvals.create(
        title="Two keys", approvers=["alice@example.com", "bob@example.com"], policy={"quorum": 2}
    )
    [message] = slack_api.posted()
    click(web, slack_api, message, ALICE_SLACK)
    assert ephemeral(slack_api, 1)[0]["text"].startswith("You approved")
    click(web, slack_api, message, ALICE_SLACK, retry=1)  # Slack's retry of the same click
    click(web, slack_api, message, ALICE_SLACK)  # a double click
    replies = ephemeral(slack_api, 2)
    assert replies[1]["text"].startswith("You already decided")
    assert len(sdk.approvals.get(approval.id).decisions) == 1


def test_bad_and_stale_signatures_are_refused_and_decide_nothing(sdk, slack_api, web, caplog):
    approval = sdk.approvals.create(title="Guarded", approvers=["alice@example.com"])
    [message] = slack_api.posted()
    args = {
        "user_id": ALICE_SLACK,
        "action_id": "signoff_approve",
        "value": approval.id,
        "channel": message.channel,
        "message_ts": message.ts,
        "response_url": slack_api.response_url(),
    }
    body, headers = interaction(**args, secret="not-the-signing-secret")
    forged = web.post("/slack/interactions", content=body, headers=headers)
    body, headers = interaction(**args)
    tampered = web.post(
        "/slack/interactions", content=body.replace(b"U0ALICE01", b"U0BOB0001"), headers=headers
    )
    body, headers = interaction(**args, timestamp=int(time.time()) - 6 * 60)
    stale = web.post("/slack/interactions", content=body, headers=headers)
    unsigned = web.post("/slack/interactions", content=body)
    for answer, code in (
        (forged, "invalid_slack_signature"),
        (tampered, "invalid_slack_signature"),
        (stale, "stale_slack_request"),
        (unsigned, "invalid_slack_signature"),
    ):
        assert answer.status_code == 401, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == code
    assert sdk.approvals.get(approval.id).decisions == []
    assert slack_api.responses == []
    assert slack_api.calls_of("users.info") == []


def test_clicks_on_other_buttons_and_other_interactions_are_acknowledged_and_ignored(
    sdk, slack_api, web
):
    approval = sdk.approvals.create(title="Links", approvers=["alice@example.com"])
    [message] = slack_api.posted()
    opened = click(web, slack_api, message, ALICE_SLACK, "signoff_open")
    body = b"payload=" + httpx.QueryParams({"x": '{"type":"view_submission"}'})["x"].encode()
    other = web.post("/slack/interactions", content=body, headers=signed_headers(body))
    assert (opened.status_code, other.status_code) == (200, 200)
    assert sdk.approvals.get(approval.id).decisions == []
    assert slack_api.responses == []


def test_a_slack_that_fails_is_retried_and_delays_neither_decisions_nor_other_channels(
    sdk, slack_api, server
):
    slack_api.fail_next = 2
    with Receiver() as receiver:
        sdk.subscriptions.create("hooks", kind="webhook", target=receiver.url)
        key = sdk.people.create_key(user="alice@example.com").key
        approval = sdk.approvals.create(title="Through a storm", approvers=["alice@example.com"])
        receiver.wait_for(1)
        with signoff.Client(server.url, key) as alice:
            alice.approvals.approve(approval.id)
        assert sdk.approvals.get(approval.id).status == "approved"
        receiver.wait_for(3)  # created, decided, settled: none waited on Slack
    [message] = slack_api.posted()
    assert not message.buttons  # posted late, as it stands now
    assert len(slack_api.calls_of("chat.postMessage")) == 3
    [posted] = rows(server, select(DeliveryRow).where(DeliveryRow.target == "#approvals"))
    assert (posted.status, posted.attempts) == ("delivered", 3)


def test_slack_errors_are_recorded_and_ratelimits_retried_after_their_wait(sdk, slack_api, server):
    slack_api.error_next = ["not_in_channel"]
    slack_api.ratelimit_next = 1
    sdk.approvals.create(title="Slowly", approvers=["alice@example.com"])
    slack_api.posted()
    limited, refused, _posted = slack_api.calls_of("chat.postMessage")
    assert refused.at - limited.at >= 1.0  # Retry-After: 1, over the 0.05 s test backoff
    query = select(DeliveryRow).where(DeliveryRow.target == "#approvals")
    [delivery] = slack_api.wait_for(
        lambda: [d for d in rows(server, query) if d.status == "delivered"], "the record"
    )
    detail = sdk.deliveries.get(delivery.id)
    assert [a.error for a in detail.attempt_log] == [
        "ratelimited: retry after 1.0 s",
        "not_in_channel",
        None,
    ]
    assert [a.status_code for a in detail.attempt_log] == [429, 200, 200]


def test_a_channel_that_does_not_exist_keeps_failing_with_slacks_error(sdk, slack_api, server):
    sdk.subscriptions.create("nowhere", kind="slack", target="#no-such-channel")
    sdk.approvals.create(title="Lost", approvers=["alice@example.com"])
    wait = slack_api.wait_for
    wait(lambda: len(slack_api.calls_of("chat.postMessage")) >= 3, "three attempts")
    [failing] = rows(server, select(DeliveryRow).where(DeliveryRow.target == "#no-such-channel"))
    assert (failing.status, failing.last_error) == ("pending", "channel_not_found")


def test_an_update_of_a_message_deleted_in_slack_is_dead_at_once(sdk, slack_api, server):
    """No retry can bring a deleted message back: the update is a dead letter at its first
    failure (visible to admins and on the approval), not retried for days."""
    key = sdk.people.create_key(user="alice@example.com").key
    approval = sdk.approvals.create(title="Deleted in Slack", approvers=["alice@example.com"])
    [message] = slack_api.posted()
    del slack_api.messages[(message.channel, message.ts)]  # someone deleted it in Slack
    with signoff.Client(server.url, key) as alice:
        alice.approvals.approve(approval.id)
    query = select(DeliveryRow).where(DeliveryRow.target == f"{message.channel}/{message.ts}")
    [update] = slack_api.wait_for(
        lambda: [d for d in rows(server, query) if d.status == "dead"], "the dead update"
    )
    assert (update.attempts, update.last_error) == (1, "message_not_found")
    time.sleep(0.3)  # several of the test's backoffs: nothing retries it
    assert len(slack_api.calls_of("chat.update")) == 1


@pytest.mark.parametrize("settings_overrides", [{"slack_api_url": REFUSING}], indirect=True)
def test_a_slack_that_refuses_connections_is_retried_and_decisions_go_on(sdk, slack_api, server):
    key = sdk.people.create_key(user="alice@example.com").key
    approval = sdk.approvals.create(title="Offline", approvers=["alice@example.com"])
    with signoff.Client(server.url, key) as alice:
        assert alice.approvals.approve(approval.id).status == "approved"
    query = select(DeliveryRow).where(DeliveryRow.target == "#approvals")

    def failed_twice() -> list[Any]:
        return [d for d in rows(server, query) if d.attempts >= 2]

    [failing] = slack_api.wait_for(failed_twice, "two failed attempts")
    assert failing.status == "pending"
    assert "ClientConnectorError" in failing.last_error or "Connect" in failing.last_error


@pytest.mark.parametrize(
    "settings_overrides", [{"slack_bot_token": None, "slack_signing_secret": None}], indirect=True
)
def test_without_slack_settings_the_interactivity_endpoint_says_so(web):
    body = b"payload=%7B%7D"
    answer = web.post("/slack/interactions", content=body, headers=signed_headers(body))
    assert answer.status_code == 404
    assert answer.json()["code"] == "slack_not_configured"


def test_an_email_links_only_a_member_of_the_installed_workspace_whose_email_is_confirmed(
    sdk, slack_api, server, web
):
    """A member of another workspace (a shared channel) or one whose email Slack has not
    confirmed may show anyone's address: they are asked to get linked, and decide nothing."""
    approval = sdk.approvals.create(title="Alice only", approvers=["alice@example.com"])
    [message] = slack_api.posted()
    slack_api.unconfirmed.add(ALICE_SLACK)
    click(web, slack_api, message, ALICE_SLACK, team_id="T0OTHERTEAM")  # another workspace
    ephemeral(slack_api, 1)  # handled (clicks at once may each ask auth.test, harmlessly)
    click(web, slack_api, message, ALICE_SLACK)  # the workspace, but the email unconfirmed
    for reply in ephemeral(slack_api, 2):
        assert reply["text"].startswith("Your Slack account is not linked to a signoff user")
    assert sdk.approvals.get(approval.id).decisions == []
    assert rows(server, select(SlackUserRow)) == []
    slack_api.unconfirmed.discard(ALICE_SLACK)
    click(web, slack_api, message, ALICE_SLACK)
    assert sdk.approvals.get(approval.id).wait(timeout=10).status == "approved"
    assert len(slack_api.calls_of("auth.test")) == 1  # asked once, then kept
    assert len(slack_api.calls_of("users.info")) == 2  # never for the other workspace's click
    assert slack_api.violations == []
