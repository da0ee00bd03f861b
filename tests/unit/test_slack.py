"""Slack pieces on their own: messages within Block Kit's limits and never taking a
requester's text for markup, clicks read from Slack's payloads, signatures checked, and the
sender's bookkeeping (no second post on a retry; a message posted while the approval moved
on is updated at once)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from signoff import errors, schemas
from signoff.domain import slack
from signoff.domain.approvals import Verdict
from signoff.domain.deliveries import TargetKind
from signoff.services import approval_settlement, approvals, deliveries
from signoff.services import slack as slack_service
from signoff.store import principals
from signoff.store.engine import Database
from signoff.store.tables import DeliveryRow
from signoff.web.slack import check_signature
from signoff.worker.senders import slack_blocks
from signoff.worker.senders.slack import SlackSender
from tests import factories
from tests.slack_api import BOT_TOKEN, SIGNING_SECRET, SlackApi, block_problems, signed_headers


def approval_of(db: Database, **overrides: object) -> approvals.Approval:
    requester = factories.user(db, "req@example.com")
    factories.user(db, "alice@example.com")
    return factories.create(db, requester, **overrides).approval


def test_a_huge_hostile_approval_fits_block_kit_and_stays_text(db):
    approval = approval_of(
        db,
        title="<!here> " + "T" * 190,
        body="&" * 2999 + "<!channel>" * 500,
        context={f"key{i}": "<https://evil.example|click>" for i in range(30)},
    )
    text, blocks = slack_blocks.approval_message(approval, "https://signoff.example.com/")
    assert block_problems({"text": text, "blocks": blocks}) == []
    assert blocks[0]["text"]["text"].startswith("<!here> TTT")  # plain_text: never a mention
    assert len(blocks[0]["text"]["text"]) == 150
    body = blocks[1]["text"]["text"]
    assert len(body) <= 3000
    assert body.endswith("&amp;\u2026")  # cut between entities, never inside one
    assert "<" not in body
    assert len(blocks[2]["fields"]) == 10
    assert "<https://evil.example" not in str(blocks)
    assert blocks[3]["elements"][0]["text"].startswith("20 more in <https://signoff.example.com")
    assert text.startswith("Approval requested: &lt;!here&gt;")


def test_a_settled_approval_shows_its_outcome_and_no_buttons(db):
    approval = approval_of(db)
    canceled = approval_settlement.cancel(db, factories.CLI, approval.id, reason="moot")
    _, blocks = slack_blocks.approval_message(canceled, "https://s.example")
    assert "actions" not in [block["type"] for block in blocks]
    assert "*Canceled*" in blocks[-1]["text"]["text"]
    assert "<https://s.example/approvals/" in blocks[-1]["text"]["text"]


def test_a_click_is_read_from_a_block_actions_payload():
    payload = {
        "type": "block_actions",
        "user": {"id": "U0ALICE01", "team_id": "T0TEAM"},
        "container": {"channel_id": "C0CHAN", "message_ts": "1700000000.000100"},
        "channel": {"id": "C0CHAN"},
        "response_url": "https://hooks.slack.com/actions/T0/1/x",
        "actions": [{"action_id": "signoff_reject", "value": "ap_xvrhmtfm6gt1", "type": "button"}],
    }
    found = slack.click_of(payload)
    assert found == slack.Click(
        "U0ALICE01",
        "T0TEAM",
        "ap_xvrhmtfm6gt1",
        Verdict.REJECT,
        "https://hooks.slack.com/actions/T0/1/x",
        "C0CHAN",
        "1700000000.000100",
    )
    link = payload | {"actions": [{"action_id": "signoff_open", "type": "button"}]}
    assert slack.click_of(link) is None
    assert slack.click_of(payload | {"type": "view_submission"}) is None
    with pytest.raises(errors.InvalidInput):
        slack.click_of({k: v for k, v in payload.items() if k != "response_url"})
    forged_value = [{"action_id": "signoff_approve", "value": "ap_1|x>", "type": "button"}]
    with pytest.raises(errors.InvalidInput):
        slack.click_of(payload | {"actions": forged_value})


def test_a_signature_is_checked_over_the_raw_body_within_five_minutes():
    body = b"payload=%7B%7D"
    check_signature(SIGNING_SECRET, body, signed_headers(body))
    with pytest.raises(errors.SlackSignatureInvalid):
        check_signature(SIGNING_SECRET, body + b" ", signed_headers(body))
    with pytest.raises(errors.SlackSignatureInvalid):
        check_signature(
            SIGNING_SECRET, body, signed_headers(body) | {"x-slack-request-timestamp": "x"}
        )
    for skew in (-301, 301):  # from the past or from the future
        stale = signed_headers(body, timestamp=int(time.time()) + skew)
        with pytest.raises(errors.SlackRequestStale):
            check_signature(SIGNING_SECRET, body, stale)


def test_update_targets_are_never_mistaken_for_channels():
    message = slack.Message("C0APPROVALS", "1700000000.000100")
    assert slack.message_of(message.target) == message
    assert slack.message_of("#approvals") is None
    assert slack.message_of("C0APPROVALS") is None


@pytest.fixture
def slack_api() -> Iterator[SlackApi]:
    with SlackApi() as api:
        yield api
    assert api.violations == []  # every request was one Slack would take


def slack_deliveries(db: Database) -> list[DeliveryRow]:
    with db.read() as session:
        query = select(DeliveryRow).where(DeliveryRow.target_kind == TargetKind.SLACK.value)
        return list(session.scalars(query.order_by(DeliveryRow.id)))


async def send_due(db: Database, api: SlackApi) -> list[bool]:
    claimed = deliveries.claim_due(db, lease=timedelta(seconds=30), limit=100)
    sender = SlackSender(
        db, token=BOT_TOKEN, api_url=api.api_url, public_url="https://s.example", timeout=2
    )
    async with sender:
        results = [await sender.send(delivery) for delivery in claimed]
    return [result.ok for result in results]


async def test_a_retried_post_whose_message_was_recorded_is_not_posted_again(db, slack_api):
    factories.subscription(db, "chat", kind="slack", target="#approvals")
    approval_of(db)
    [delivery] = deliveries.claim_due(db, lease=timedelta(0), limit=10)
    sender = SlackSender(
        db, token=BOT_TOKEN, api_url=slack_api.api_url, public_url="https://s.example", timeout=2
    )
    async with sender:
        first = await sender.send(delivery)
        again = await sender.send(delivery)  # its attempt was never recorded: a retry
    assert (first.ok, again.ok) == (True, True)
    assert again.response_excerpt is not None
    assert again.response_excerpt.startswith("already posted as C0APPROVALS/")
    assert len(slack_api.calls_of("chat.postMessage")) == 1


async def test_a_message_posted_as_the_approval_was_decided_is_updated_at_once(db, slack_api):
    only_created = {"type": ["approval.created"]}
    factories.subscription(db, "chat", kind="slack", target="#approvals", filter=only_created)
    approval = approval_of(db)
    [delivery] = deliveries.claim_due(db, lease=timedelta(0), limit=10)
    shown = slack_service.Shown.of(approval)  # rendered while pending...
    with db.read() as session:
        alice = principals.get_user(session, "alice@example.com")
    approval_settlement.decide(
        db, factories.context(db, alice), approval.id, schemas.DecisionCreate(verdict="approve")
    )  # ...decided before the post was recorded: the settlement saw no message
    message = slack.Message("C0APPROVALS", "1700000000.000200")
    slack_service.record_posted(db, delivery, approval.id, message, shown)
    assert [d.target for d in slack_deliveries(db)] == ["#approvals", message.target]


def test_a_slack_user_is_found_by_email_once_and_an_explicit_link_wins(db):
    alice = factories.user(db, "alice@example.com")
    bob = factories.user(db, "bob@example.com")
    assert slack_service.find_user(db, "U0ALICE01") is None
    assert slack_service.link_by_email(db, "U0ALICE01", "Alice@Example.com ") == alice
    assert slack_service.find_user(db, "U0ALICE01") == alice
    slack_service.link_user(db, factories.CLI, "bob@example.com", "U0ALICE01")
    assert slack_service.find_user(db, "U0ALICE01") == bob
    assert slack_service.link_by_email(db, "U0ALICE01", "alice@example.com") == bob
    assert slack_service.link_by_email(db, "U0NOBODY1", "nobody@example.com") is None
    assert slack_service.unlink_user(db, factories.CLI, "bob@example.com") == ["U0ALICE01"]
    assert slack_service.find_user(db, "U0ALICE01") is None


def test_first_clicks_of_one_slack_user_at_once_all_find_their_user(db):
    alice = factories.user(db, "alice@example.com")

    def first_click(_: int) -> object:
        return slack_service.link_by_email(db, "U0ALICE01", "alice@example.com")

    with ThreadPoolExecutor(8) as pool:
        found = list(pool.map(first_click, range(8)))
    assert found == [alice] * 8


def test_a_deadline_is_shown_in_each_readers_time_zone():
    moment = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)
    assert slack_blocks.date(moment) == (
        "<!date^1795629600^{date_short_pretty} at {time}|2026-11-25 18:00 UTC>"
    )


def test_two_slack_updates_in_flight_end_on_the_settled_state(db):
    """Update U1 (first decision) reads the approval, then its chat.update is slow; the
    settling decision's update U2 reads the settled approval and lands first; U1 lands last,
    reads the approval again, finds it settled, and updates once more: no buttons remain."""
    import asyncio

    from signoff.store import outbox

    alice = factories.user(db, "alice@example.com")
    bob = factories.user(db, "bob@example.com")
    pipeline = factories.user(db, "pipeline@example.com")
    factories.subscription(
        db, "s", kind="slack", target="#approvals", filter={"type": ["approval.created"]}
    )
    created = factories.create(
        db, pipeline, approvers=["alice@example.com", "bob@example.com"], policy={"quorum": 2}
    )

    def claim() -> list[deliveries.Delivery]:
        with db.write() as session:
            return [
                d
                for d in outbox.claim_due(
                    session,
                    now=datetime.now(UTC) + timedelta(days=1),
                    lease=timedelta(seconds=30),
                    limit=50,
                )
                if d.target_kind is TargetKind.SLACK
            ]

    def decide(who: principals.User) -> None:
        spec = schemas.DecisionCreate(verdict="approve")
        approval_settlement.decide(db, factories.context(db, who), created.approval.id, spec)

    async def run(api: SlackApi) -> None:
        async with SlackSender(
            db,
            token=BOT_TOKEN,
            api_url=api.api_url,
            public_url="https://signoff.example.com",
            timeout=10,
        ) as sender:
            [post] = claim()
            assert (await sender.send(post)).ok
            decide(alice)
            [u1] = claim()
            real_call, gate = sender._call, asyncio.Event()

            async def slow_first(method: str, *args: Any, **kw: Any) -> dict[str, Any]:
                if method == "chat.update" and not gate.is_set():
                    await gate.wait()  # U1 has read the approval (1 of 2), Slack is slow
                return await real_call(method, *args, **kw)

            sender._call = slow_first  # type: ignore[method-assign]
            first = asyncio.create_task(sender.send(u1))
            await asyncio.sleep(0.3)
            decide(bob)  # settles
            [u2] = claim()
            sender._call = real_call  # type: ignore[method-assign]
            assert (await sender.send(u2)).ok
            gate.set()
            assert (await first).ok

    with SlackApi() as api:
        asyncio.run(run(api))
        [message] = api.messages.values()
        assert len(api.calls_of("chat.update")) == 3  # U2, U1 as read, U1 again as settled
    shown = approvals.get(db, factories.context(db, alice), created.approval.id)
    assert shown.status.value == "approved"
    assert message.buttons == []  # settled: no Approve / Reject any more
