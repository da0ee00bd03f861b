"""Block Kit messages for Slack: an approval (with Approve and Reject buttons while it is
pending, its outcome once settled), and a short notice for any other event.

Everything a requester wrote is escaped (``domain.slack.escaped``) and cut to Slack's limits:
3000 characters of text per block, 150 per header, 10 fields per section of at most 2000
characters each, 50 blocks per message, 75 characters per button label. Dates use Slack's
``<!date^...>`` formatting, which shows each reader their own time zone, with a UTC fallback.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from signoff.domain import approvals, events, policies, slack
from signoff.domain.approvals import Approval, Status, Verdict

MAX_TEXT = 3000
MAX_HEADER = 150
MAX_FIELDS = 10
MAX_FIELD = 2000
MAX_BLOCKS = 50
MAX_FALLBACK = 300  # of the notification text (``text``); Slack allows far more
_CUT_ENTITY = re.compile(r"&[a-z]{0,3}$")

Blocks = list[dict[str, Any]]


def approval_message(approval: Approval, public_url: str) -> tuple[str, Blocks]:
    """The fallback text and the blocks of an approval's message, as it stands now."""
    url = approval_url(approval, public_url)
    title = " ".join(approval.title.split())
    blocks: Blocks = [_header(title)]
    if approval.body.strip():
        blocks.append(_section(mrkdwn(approval.body.strip())))
    blocks += _context_fields(approval.context, url)
    if approval.is_pending:
        blocks += _pending(approval, url)
        fallback = f"Approval requested: {title}"
    else:
        blocks += _settled(approval, url)
        fallback = f"{approval.status.value.capitalize()}: {title}"
    return slack.escaped(approvals.shortened(fallback, MAX_FALLBACK)), blocks[:MAX_BLOCKS]


def notice_message(event: events.Event, public_url: str) -> tuple[str, Blocks]:
    """A line about an event that has no message of its own to update, with a link to its
    approval when it is about one."""
    data = event.data
    title = " ".join(str(data.get("title") or event.subject).split())
    status = f" ({data['status']})" if isinstance(data.get("status"), str) else ""
    described = events.event_type(event.type).description
    text = f"{described} *{slack.escaped(approvals.shortened(title, 200))}*{status}"
    if event.type.startswith("approval."):
        text += f"\n<{public_url.rstrip('/')}/approvals/{event.subject}|Open in signoff>"
    fallback = slack.escaped(approvals.shortened(f"{event.type}: {title}{status}", MAX_FALLBACK))
    return fallback, [_section(text), _context(f"`{event.type}`")]


def approval_url(approval: Approval, public_url: str) -> str:
    return f"{public_url.rstrip('/')}/approvals/{approval.id}"


def mrkdwn(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` escaped for mrkdwn and cut to ``limit`` characters, never inside an entity."""
    escaped = slack.escaped(text)
    if len(escaped) <= limit:
        return escaped
    return _CUT_ENTITY.sub("", escaped[: limit - 1]).rstrip() + "\u2026"


def date(moment: datetime) -> str:
    """``moment`` in each reader's own time zone, with a UTC fallback."""
    fallback = moment.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} at {{time}}|{fallback}>"


def _pending(approval: Approval, url: str) -> Blocks:
    lines = [f"Decide by {date(approval.deadline_at)}."]
    lines += policies.rules_in_words(approval.policy.rules_json())
    progress = _progress(approval)
    blocks: Blocks = [_section(progress)] if progress else []
    blocks.append(_context(" ".join(lines)))
    blocks.append(
        {
            "type": "actions",
            "block_id": slack.ACTIONS_BLOCK,
            "elements": [
                _button("Approve", slack.APPROVE_ACTION, value=approval.id, style="primary"),
                _button("Reject", slack.REJECT_ACTION, value=approval.id, style="danger"),
                _button("Open in signoff", slack.OPEN_ACTION, url=url),
            ],
        }
    )
    return blocks


def _progress(approval: Approval) -> str:
    """Who decided so far ("1 of 2 approvals: a@x approved"); empty before anyone did."""
    if not approval.decisions:
        return ""
    approved = sum(1 for d in approval.decisions if d.verdict is Verdict.APPROVE)
    said = ", ".join(f"{d.user_email} {_past(d.verdict)}" for d in approval.decisions)
    return mrkdwn(f"{approved} of {approval.policy.quorum} approvals: {said}")


def _settled(approval: Approval, url: str) -> Blocks:
    when = date(approval.settled_at) if approval.settled_at else "an earlier time"
    reason = (approval.outcome or {}).get("reason")
    if approval.status is Status.CANCELED:
        headline = f":no_entry_sign: *Canceled* {when}"
    elif reason in (approvals.Reason.TIMEOUT, approvals.Reason.HEARTBEAT):
        why = (
            "nobody decided in time"
            if reason == approvals.Reason.TIMEOUT
            else "the workflow stopped"
        )
        headline = f":hourglass: *{approval.status.value.capitalize()}* {when}: {why}"
    else:
        icon = ":white_check_mark:" if approval.status is Status.APPROVED else ":x:"
        settling = Verdict.APPROVE if approval.status is Status.APPROVED else Verdict.REJECT
        deciders = ", ".join(
            slack.escaped(d.user_email) for d in approval.decisions if d.verdict is settling
        )
        headline = f"{icon} *{approval.status.value.capitalize()}* by {deciders} {when}"
    blocks: Blocks = [_section(f"{headline}\n<{url}|Open in signoff>")]
    if approval.decisions:
        said = [
            f"{slack.escaped(d.user_email)} {_past(d.verdict)} {date(d.decided_at)}"
            + (f": {mrkdwn(d.comment, 300)}" if d.comment else "")
            for d in approval.decisions
        ]
        blocks.append(_context(approvals.shortened("\n".join(said), MAX_TEXT)))
    return blocks


def _context_fields(context: dict[str, Any], url: str) -> Blocks:
    shown, more = approvals.readable_context(context, max_items=MAX_FIELDS, max_chars=500)
    if not shown:
        return []
    fields = [
        {"type": "mrkdwn", "text": mrkdwn(f"*{key}*\n{value}", MAX_FIELD)} for key, value in shown
    ]
    blocks: Blocks = [{"type": "section", "fields": fields}]
    if more:
        blocks.append(_context(f"{more} more in <{url}|the approval's context>."))
    return blocks


def _header(title: str) -> dict[str, Any]:
    text = approvals.shortened(title, MAX_HEADER)
    return {"type": "header", "text": {"type": "plain_text", "text": text, "emoji": False}}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:MAX_TEXT]}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:MAX_TEXT]}]}


def _button(
    label: str,
    action_id: str,
    *,
    value: str | None = None,
    style: str | None = None,
    url: str | None = None,
) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": label},
    }
    if value is not None:
        button["value"] = value
    if style is not None:
        button["style"] = style
    if url is not None:
        button["url"] = url
    return button


def _past(verdict: Verdict) -> str:
    return "approved" if verdict is Verdict.APPROVE else "rejected"
