"""Slack: what signoff's approval messages carry, and what a click on them asks.

A message posted for an approval has Approve and Reject buttons whose ``value`` is the
approval's public id, never its task token: anyone who sees the message sees the value, and
the click only counts as the decision of the Slack user who made it, once that user is known
as a signoff approver. Clicks come back to ``/slack/interactions`` signed by Slack (``v0``
HMAC of ``v0:<timestamp>:<raw body>`` under the app's signing secret) and are refused when
the signature or a five-minute window says they are not Slack's, or not now.

A Slack user is a signoff user by an admin's explicit link, or else by the email of their
Slack profile matching an active signoff user's (found once, then kept).

Nothing here does I/O: the sender (``worker/senders/slack.py``), the service
(``services/slack.py``) and the route (``web/slack.py``) do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from signoff import errors
from signoff.domain import policies
from signoff.domain.approvals import Verdict

ACTIONS_BLOCK = "signoff_decide"
APPROVE_ACTION = "signoff_approve"
REJECT_ACTION = "signoff_reject"
OPEN_ACTION = "signoff_open"  # the link button: Slack reports its clicks too; nothing to do
VERDICTS = {APPROVE_ACTION: Verdict.APPROVE, REJECT_ACTION: Verdict.REJECT}

MAX_REQUEST_AGE_SECONDS = 5 * 60  # Slack's own advice for the replay window
_MESSAGE = re.compile(r"([A-Z0-9]{8,24})/(\d{6,}\.\d{1,10})")
_SLACK_USER_ID = re.compile(r"[UW][A-Z0-9]{2,30}")
_APPROVAL_ID = re.compile(r"ap_[a-z0-9]{4,40}")  # what our buttons carry (``ids.new_id``)


class Source(StrEnum):
    """How signoff knows which signoff user a Slack user is."""

    EXPLICIT = "explicit"  # an admin said so
    EMAIL = "email"  # their Slack profile's email is a signoff user's


@dataclass(frozen=True)
class Message:
    """One posted message: the channel's id (as Slack answered it) and the message's ``ts``."""

    channel: str
    ts: str

    @property
    def target(self) -> str:
        """The delivery target that updates this message: ``<channel>/<ts>``. It cannot be
        mistaken for a subscription's channel, which never holds a ``/``."""
        return f"{self.channel}/{self.ts}"


def message_of(target: str) -> Message | None:
    """The message a delivery target names, or None when the target is a channel to post to."""
    found = _MESSAGE.fullmatch(target)
    return Message(found[1], found[2]) if found else None


@dataclass(frozen=True)
class Click:
    """A click on an Approve or Reject button of one of our messages."""

    slack_user_id: str
    team_id: str
    approval_id: str
    verdict: Verdict
    response_url: str
    channel: str
    message_ts: str


def click_of(payload: dict[str, Any]) -> Click | None:
    """The decision a ``block_actions`` payload asks for; None for anything else (another
    interaction type, our link button, another app's buttons). ``InvalidInput`` when it
    claims to be ours but lacks what a real one has."""
    if payload.get("type") != "block_actions":
        return None
    action = next((a for a in payload.get("actions") or [] if a.get("action_id") in VERDICTS), None)
    if action is None:
        return None
    user = payload.get("user") or {}
    container = payload.get("container") or {}
    try:
        click = Click(
            slack_user_id=str(user["id"]),
            team_id=str(user.get("team_id") or (payload.get("team") or {}).get("id") or ""),
            approval_id=str(action["value"]),
            verdict=VERDICTS[action["action_id"]],
            response_url=str(payload["response_url"]),
            channel=str(container.get("channel_id") or (payload.get("channel") or {})["id"]),
            message_ts=str(container.get("message_ts") or ""),
        )
    except (KeyError, TypeError) as exc:
        raise errors.InvalidInput(f"a block_actions payload without {exc}") from exc
    if not _APPROVAL_ID.fullmatch(click.approval_id):  # it goes into links in our answers
        raise errors.InvalidInput("the button's value is not an approval id")
    return click


def is_slack_user_id(value: str) -> bool:
    return bool(_SLACK_USER_ID.fullmatch(value))


def check_slack_user_id(value: str) -> str:
    if not is_slack_user_id(value):
        raise errors.InvalidInput(
            f"{value!r} is not a Slack user id (like U012AB3CD, from the member's profile, "
            "'Copy member ID')",
            field="slack_user_id",
        )
    return value


def needs_the_page(policy: policies.Policy, verdict: Verdict) -> bool:
    """A button carries no comment and no form: such decisions are made on the approval's
    page. A form is asked for on approval (``approvals.check_can_decide``)."""
    return policy.comment_required or (policy.form is not None and verdict is Verdict.APPROVE)


def escaped(text: str) -> str:
    """``text`` safe in Slack ``mrkdwn``: ``&``, ``<`` and ``>`` escaped as Slack asks, so a
    requester's text cannot make a mention (``<!channel>``), a link or a user ping."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def refusal(exc: errors.SignoffError, approval_url: str) -> str:
    """Why a click decided nothing, for the one who clicked (an ephemeral message)."""
    page = f"<{approval_url}|Open it in signoff>"
    if isinstance(exc, errors.UserNotFound):
        return (
            "Your Slack account is not linked to a signoff user, so this click decided "
            "nothing. Ask a signoff admin to link it, or decide in signoff: " + page
        )
    if isinstance(exc, errors.AccountDisabled):
        return "Your signoff account is disabled, so this click decided nothing."
    if isinstance(exc, errors.ApprovalNotFound | errors.NotAnApprover):
        return "You are not an approver of this approval, so this click decided nothing."
    if isinstance(exc, errors.RequesterCannotDecide):
        return "You asked for this approval, and its policy does not let requesters decide."
    if isinstance(exc, errors.DuplicateDecision):
        return "You already decided on this approval; a decision is not changed."
    if isinstance(exc, errors.AlreadyDecided):
        status = exc.extra.get("approval_status", "settled")
        return f"This approval is already {status}; nothing more can be decided."
    if isinstance(exc, errors.CommentRequired | errors.InvalidForm):
        return f"{exc.detail} This needs the approval's page, not a button: {page}"
    return f"This click decided nothing: {escaped(exc.detail)}. {page}"
