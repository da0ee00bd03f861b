"""Slack: approval messages with Approve and Reject buttons, kept up to date until settled,
sent through Slack's Web API with slack_sdk's ``AsyncWebClient`` (one client and connection
pool for the worker).

What a Slack delivery does depends on its target and event:

* a subscription's channel and ``approval.created``: ``chat.postMessage`` of the approval's
  message (``slack_blocks.approval_message``), recorded (``services/slack.record_posted``) so
  that it can be updated, and so that a retry of the delivery does not post it again;
* a recorded message (``<channel>/<ts>``, queued by ``services/approval_settlement`` on
  every decision and settlement): ``chat.update`` with the approval as it is now, buttons
  gone once settled, and again (``MAX_UPDATES`` in all) while the approval read after the
  update shows another status or decision count, so racing updates end on the latest state;
* a subscription's channel and any other event: a short notice (``chat.postMessage``), unless
  that channel already holds the approval's message, which its updates keep current.

Slack answers ``ok: false`` with an error code (``channel_not_found``, ``not_in_channel``,
``invalid_auth``...): a failed attempt with that code recorded, retried with the usual
backoff until the delivery is too old. ``ratelimited`` (HTTP 429) is retried no sooner than
its ``Retry-After``. Every call is bounded by the delivery timeout, and slack_sdk's own
retries are off: the outbox retries, and a dead Slack holds only its own delivery slots.
"""

from __future__ import annotations

import asyncio
import json
import time
from types import TracebackType
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from signoff.domain import events, slack
from signoff.domain.deliveries import AttemptResult, Delivery
from signoff.services import slack as slack_service
from signoff.store.engine import Database
from signoff.worker.senders import slack_blocks

MAX_UPDATES = 5  # chat.update calls of one delivery, while the approval keeps changing
NOT_CONFIGURED = "Slack is not configured (SIGNOFF_SLACK_BOT_TOKEN is unset)"
# Slack's errors that no retry can mend: the message is gone or can no longer be edited, or
# what we sent is malformed. Anything else (a channel the bot is not in yet, a revoked token,
# an outage) may be fixed while the delivery is retried.
FINAL_ERRORS = frozenset(
    {
        "message_not_found",
        "cant_update_message",
        "edit_window_closed",
        "msg_too_long",
        "invalid_blocks",
        "invalid_arguments",
    }
)
_FAILURES = (SlackClientError, aiohttp.ClientError, TimeoutError, OSError, ValueError)


class SlackSender:
    """Sends Slack deliveries; use ``async with`` to open and close its connection pool."""

    def __init__(
        self, db: Database, *, token: str, api_url: str, public_url: str, timeout: float
    ) -> None:
        self.db = db
        self.token = token
        self.api_url = api_url
        self.public_url = public_url
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._client: AsyncWebClient | None = None

    async def __aenter__(self) -> SlackSender:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        self._client = web_client(self.token, self.api_url, self.timeout, self._session)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()

    async def send(self, delivery: Delivery) -> AttemptResult:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                excerpt = await self._send(delivery)
        except SlackApiError as exc:
            return _api_failure(delivery, started, exc)
        except _FAILURES as exc:
            return _result(delivery, started, error=f"{type(exc).__name__}: {exc}"[:500])
        return _result(delivery, started, excerpt=excerpt)

    async def _send(self, delivery: Delivery) -> str:
        message = slack.message_of(delivery.target)
        if message is not None:
            return await self._update(delivery, message)
        if delivery.event.type == events.APPROVAL_CREATED:
            return await self._post_approval(delivery)
        is_approval = delivery.event.type.startswith("approval.")
        if is_approval and await asyncio.to_thread(
            slack_service.has_message_in, self.db, delivery.event.subject, delivery.target
        ):
            return "the approval's message in this channel is updated instead"
        text, blocks = slack_blocks.notice_message(delivery.event, self.public_url)
        return await self._post(delivery.target, text, blocks)

    async def _post_approval(self, delivery: Delivery) -> str:
        posted = await asyncio.to_thread(slack_service.message_posted_by, self.db, delivery.id)
        if posted is not None:  # a retry after the post and its record: never post twice
            return f"already posted as {posted.target}"
        approval = await asyncio.to_thread(
            slack_service.find_approval, self.db, delivery.event.subject
        )
        if approval is None:
            return "the approval no longer exists: nothing to post"
        text, blocks = slack_blocks.approval_message(approval, self.public_url)
        answer = await self._call("chat.postMessage", delivery.target, text, blocks)
        message = slack.Message(str(answer["channel"]), str(answer["ts"]))
        shown = slack_service.Shown.of(approval)
        await asyncio.to_thread(
            slack_service.record_posted, self.db, delivery, approval.id, message, shown
        )
        return _excerpt(answer)

    async def _update(self, delivery: Delivery, message: slack.Message) -> str:
        approval = await asyncio.to_thread(
            slack_service.find_approval, self.db, delivery.event.subject
        )
        if approval is None:
            return "the approval no longer exists: nothing to update"
        # Updates race: one that read the approval before a later decision may land after
        # that decision's own update. So the approval is read again after each update, and
        # the message updated again while what it shows is out of date (a few times at most).
        for _ in range(MAX_UPDATES):
            text, blocks = slack_blocks.approval_message(approval, self.public_url)
            answer = await self._call("chat.update", message.channel, text, blocks, ts=message.ts)
            now = await asyncio.to_thread(
                slack_service.find_approval, self.db, delivery.event.subject
            )
            if now is None or slack_service.Shown.of(now) == slack_service.Shown.of(approval):
                break
            approval = now
        return _excerpt(answer)

    async def _post(self, channel: str, text: str, blocks: slack_blocks.Blocks) -> str:
        return _excerpt(await self._call("chat.postMessage", channel, text, blocks))

    async def _call(
        self, method: str, channel: str, text: str, blocks: slack_blocks.Blocks, **more: str
    ) -> dict[str, Any]:
        if self._client is None:
            raise RuntimeError("SlackSender is used outside 'async with'")
        body: dict[str, Any] = {"channel": channel, "text": text, "blocks": blocks} | more
        if method == "chat.postMessage":
            body |= {"unfurl_links": False, "unfurl_media": False}
        response = await self._client.api_call(method, json=body)
        return dict(response.data) if isinstance(response.data, dict) else {}


def web_client(
    token: str, api_url: str, timeout: float, session: aiohttp.ClientSession | None = None
) -> AsyncWebClient:
    """A Web API client that never retries by itself (the caller decides) and gives up after
    ``timeout`` seconds."""
    return AsyncWebClient(
        token=token,
        base_url=api_url,
        timeout=max(1, round(timeout)),
        session=session,
        retry_handlers=[],
    )


def not_configured(delivery: Delivery) -> AttemptResult:
    return _result(delivery, time.perf_counter(), error=NOT_CONFIGURED)


def _api_failure(delivery: Delivery, started: float, exc: SlackApiError) -> AttemptResult:
    response = exc.response
    data = response.data if isinstance(response.data, dict) else {}
    status = int(response.status_code)
    retry_after = None
    if status == 429:
        retry_after = _seconds(
            response.headers.get("Retry-After") or response.headers.get("retry-after")
        )
        error = f"ratelimited: retry after {retry_after or 'a while'} s"
    else:
        error = str(data.get("error") or f"HTTP {status}")
    return AttemptResult(
        delivery_id=delivery.id,
        ok=False,
        status_code=status,
        error=error[:500],
        latency_ms=_millis_since(started),
        response_excerpt=json.dumps(data)[:1024] if data else None,
        retry_after=retry_after,
        final=error in FINAL_ERRORS,
    )


def _seconds(value: Any) -> float | None:
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return None


def _excerpt(answer: dict[str, Any]) -> str:
    kept = {key: answer[key] for key in ("ok", "channel", "ts") if key in answer}
    return json.dumps(kept)


def _result(
    delivery: Delivery, started: float, *, error: str | None = None, excerpt: str | None = None
) -> AttemptResult:
    return AttemptResult(
        delivery_id=delivery.id,
        ok=error is None,
        status_code=None if error else 200,
        error=error,
        latency_ms=_millis_since(started),
        response_excerpt=excerpt,
    )


def _millis_since(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
