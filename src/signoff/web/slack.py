"""``POST /slack/interactions``: Slack's interactivity request URL, where clicks on the
Approve and Reject buttons of signoff's messages arrive.

A request is checked before anything is read from it: its ``X-Slack-Request-Timestamp`` must
be within five minutes of now and its ``X-Slack-Signature`` the v0 HMAC of the raw body under
the app's signing secret (slack_sdk's ``SignatureVerifier``); otherwise 401 problem+json
(``stale_slack_request``, ``invalid_slack_signature``), a log line, and nothing decided.

Slack wants an answer within three seconds and shows nothing of it for button clicks, so a
verified click is answered 200 at once and handled after the answer: the Slack user is found
(an explicit link, a link kept from before, or ``users.info``'s profile email when the
clicker is a member of the installed workspace and Slack confirmed that email), the decision
is recorded with channel ``slack`` under the approval's policy, and the clicker gets an
ephemeral message (through the click's ``response_url``) saying what happened or why nothing
did. The shared message itself is updated by the worker, as every decision queues that. Each
outbound call is cut off after ``OUTBOUND_TIMEOUT`` seconds. A click Slack sends again
(``X-Slack-Retry-Num``) or a double click never decides twice: an approver decides once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping
from urllib.parse import parse_qs

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from slack_sdk.errors import SlackClientError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook.async_client import AsyncWebhookClient

from signoff import errors
from signoff.domain import slack
from signoff.domain.approvals import Verdict
from signoff.domain.principals import User
from signoff.services import slack as slack_service
from signoff.settings import Settings
from signoff.web.deps import Runtime, RuntimeDep
from signoff.worker.senders import slack as slack_sender

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

OUTBOUND_TIMEOUT = 2.0  # seconds, per call to Slack made while handling a click
_OUTBOUND_FAILURES = (SlackClientError, OSError, TimeoutError, ValueError, KeyError, TypeError)


@router.post("/slack/interactions")
async def interactions(
    request: Request, runtime: RuntimeDep, background: BackgroundTasks
) -> Response:
    secret = runtime.settings.slack_signing_secret
    if secret is None:
        raise errors.SlackNotConfigured(
            "this server has no SIGNOFF_SLACK_SIGNING_SECRET, so it takes no Slack requests"
        )
    body = await request.body()
    client_addr = request.client.host if request.client else None
    try:
        check_signature(secret.get_secret_value(), body, request.headers)
    except errors.InvalidSignature as exc:
        log.warning("refused a Slack request from %s: %s", client_addr, exc.code)
        raise
    click = slack.click_of(_payload(body))
    if click is not None:
        background.add_task(
            handle_click,
            runtime,
            click,
            request_id=request.scope.get("state", {}).get("request_id"),
            client_addr=client_addr,
            is_retry="x-slack-retry-num" in request.headers,
        )
    return Response(status_code=200)


def check_signature(secret: str, body: bytes, headers: Mapping[str, str]) -> None:
    """Raise unless ``body`` was signed by Slack with ``secret`` within the last five minutes."""
    timestamp = headers.get("x-slack-request-timestamp", "")
    signature = headers.get("x-slack-signature", "")
    if not timestamp.isdigit() or not signature:
        raise errors.SlackSignatureInvalid(
            "X-Slack-Request-Timestamp and X-Slack-Signature are required"
        )
    if abs(time.time() - int(timestamp)) > slack.MAX_REQUEST_AGE_SECONDS:
        raise errors.SlackRequestStale("the request's timestamp is over five minutes from now")
    if not SignatureVerifier(secret).is_valid(body, timestamp, signature):
        raise errors.SlackSignatureInvalid("the signature does not match the body")


def _payload(body: bytes) -> dict[str, object]:
    """The JSON of the form field ``payload``, as Slack sends interactions."""
    try:
        found = json.loads(parse_qs(body.decode())["payload"][0])
    except (UnicodeDecodeError, KeyError, IndexError, ValueError) as exc:
        raise errors.InvalidInput("a Slack interaction is a form with a JSON 'payload'") from exc
    if not isinstance(found, dict):
        raise errors.InvalidInput("a Slack interaction's payload is a JSON object")
    return found


async def handle_click(
    runtime: Runtime,
    click: slack.Click,
    *,
    request_id: str | None,
    client_addr: str | None,
    is_retry: bool,
) -> None:
    """Decide for the clicker, or tell them why not; after the answer to Slack."""
    db, public_url = runtime.db, runtime.settings.public_url
    url = f"{public_url.rstrip('/')}/approvals/{click.approval_id}"
    try:
        user = await _slack_user(runtime, click)
        approval = await run_in_threadpool(
            lambda: slack_service.decide(
                db, user, click, request_id=request_id, client_addr=client_addr
            )
        )
    except errors.SignoffError as exc:
        log.info("Slack click by %s on %s decided nothing: %s", click.slack_user_id, url, exc.code)
        if not (is_retry and isinstance(exc, errors.DuplicateDecision)):
            await _tell(click, slack.refusal(exc, url))
        return
    past = "approved" if click.verdict is Verdict.APPROVE else "rejected"
    log.info("Slack user %s (%s) %s %s", click.slack_user_id, user.email, past, approval.id)
    title = slack.escaped(" ".join(approval.title.split()))
    await _tell(click, f"You {past} *{title}*. <{url}|Open in signoff>")


async def _slack_user(runtime: Runtime, click: slack.Click) -> User:
    """The signoff user of the clicker: linked before, or found now by their profile email
    (``users.info``, which needs the ``users:read.email`` scope). An email links only a
    member of the workspace the app is installed in (``auth.test``'s team) whose email Slack
    has confirmed: another workspace's member (a shared channel) may show any address."""
    db, slack_user_id = runtime.db, click.slack_user_id
    user = await run_in_threadpool(slack_service.find_user, db, slack_user_id)
    token = runtime.settings.slack_bot_token
    if user is None and token is not None and click.team_id:
        settings, secret = runtime.settings, token.get_secret_value()
        if click.team_id == await _installed_team(secret, settings):
            email = await _confirmed_email(secret, settings, slack_user_id)
            if email:
                user = await run_in_threadpool(
                    slack_service.link_by_email, db, slack_user_id, email
                )
    if user is None:
        raise errors.UserNotFound(f"Slack user {slack_user_id} is not linked to a signoff user")
    return user


_installed_teams: dict[tuple[str, str], str] = {}  # (API URL, token digest) -> team id


async def _installed_team(token: str, settings: Settings) -> str | None:
    """The id of the workspace the bot token belongs to (``auth.test``), asked once per
    token and kept; ``None`` while Slack cannot say."""
    key = (settings.slack_api_url, hashlib.sha256(token.encode()).hexdigest())
    if key in _installed_teams:
        return _installed_teams[key]
    client = slack_sender.web_client(token, settings.slack_api_url, OUTBOUND_TIMEOUT)
    try:
        answer = await client.auth_test()
        team_id = answer["team_id"]
    except _OUTBOUND_FAILURES as exc:
        log.warning("Slack auth.test failed: %s", exc)
        return None
    if not isinstance(team_id, str) or not team_id:
        return None
    _installed_teams[key] = team_id
    return team_id


async def _confirmed_email(token: str, settings: Settings, slack_user_id: str) -> str | None:
    """The profile email of a Slack user, when Slack says it is confirmed."""
    client = slack_sender.web_client(token, settings.slack_api_url, OUTBOUND_TIMEOUT)
    try:
        answer = await client.users_info(user=slack_user_id)
        member = answer["user"]
        email = member["profile"].get("email")
        confirmed = member.get("is_email_confirmed", member["profile"].get("is_email_confirmed"))
    except _OUTBOUND_FAILURES as exc:
        log.warning("Slack users.info for %s failed: %s", slack_user_id, exc)
        return None
    if confirmed is not True:
        log.info("Slack user %s: profile email not confirmed, not linked", slack_user_id)
        return None
    return str(email) if email else None


async def _tell(click: slack.Click, text: str) -> None:
    """An ephemeral message to the clicker alone; the shared message stays as it is."""
    hook = AsyncWebhookClient(url=click.response_url, timeout=int(OUTBOUND_TIMEOUT))
    try:
        answer = await hook.send_dict(
            {"response_type": "ephemeral", "replace_original": False, "text": text}
        )
    except _OUTBOUND_FAILURES as exc:
        log.warning("Slack response_url failed: %s", exc)
        return
    if answer.status_code != 200:
        log.warning("Slack response_url answered %s: %s", answer.status_code, answer.body)
