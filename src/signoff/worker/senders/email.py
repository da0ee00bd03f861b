"""Email: messages rendered from events with Jinja2 templates (HTML and plain text) and sent
over SMTP with aiosmtplib (STARTTLS, implicit TLS or plain, with optional login).

Templates live beside this module, the first line of the text one being the subject. What
signoff sends of its own (an invitation, a password reset, an approval to each person who
may decide it, its reminders and escalation) has a pair per event type (``<type>.html`` and
``<type>.txt``), and links that carry a secret are built here, from the event's data and
the server key, so no sendable link is ever stored in the database; an approver's email
carries their own decision links. What
goes to subscribers' recipients uses one generic pair (``event.html``, ``event.txt``): the
event named in the subject, a readable summary of its public envelope, and a link to the
approval when the event is about one.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

import aiosmtplib
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from signoff.domain import approvals, events, ids, policies
from signoff.domain.accounts import INVITE_LINK, RESET_LINK
from signoff.domain.approvals import Verdict
from signoff.domain.deliveries import AttemptResult, Delivery, Purpose
from signoff.worker.senders import smtp

MAX_BODY_CHARS = 4000  # of an approval's body in its email; the rest is a click away
# Events whose own emails go to people who may decide, with their decision links.
_TO_APPROVERS = (events.APPROVAL_CREATED, events.APPROVAL_REMINDER_DUE, events.APPROVAL_ESCALATED)

_templates = Environment(
    loader=PackageLoader("signoff.worker.senders", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(delivery: Delivery, *, public_url: str, secret_key: str) -> EmailMessage:
    """The message for one email delivery."""
    event = delivery.event
    base_url = public_url.rstrip("/")
    if delivery.purpose is not Purpose.SUBSCRIPTION:  # signoff's own email: its own template
        name = event.type.replace(".", "_")
        values: dict[str, Any] = {
            "data": event.data,
            "expires_at": _readable(event.data.get("expires_at")),
        }
        values |= _links(delivery, base_url, secret_key)
        if event.type in _TO_APPROVERS:
            values |= _approval_values(event.data)
    else:
        name, values = "event", _event_values(delivery.payload(), base_url)
    values["public_url"] = base_url
    subject, _, text = _templates.get_template(f"{name}.txt").render(values).partition("\n")
    message = EmailMessage()
    message["To"] = delivery.target
    message["Subject"] = subject.strip()
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="signoff")
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies
    message.set_content(text.lstrip("\n"))
    message.add_alternative(_templates.get_template(f"{name}.html").render(values), subtype="html")
    return message


async def send(
    delivery: Delivery, pool: smtp.Pool, *, public_url: str, secret_key: str, timeout: float
) -> AttemptResult:
    """One attempt at ``delivery``; cut off after ``timeout`` seconds (the connection, the
    login and the whole SMTP conversation together), which is a failed attempt."""
    started = time.perf_counter()
    if pool.config.host is None:
        return _result(delivery, started, error="SMTP is not configured (SIGNOFF_SMTP_HOST)")
    try:  # a message that cannot be rendered is a failed attempt, recorded like any other
        message = render(delivery, public_url=public_url, secret_key=secret_key)
    except Exception as exc:  # a template or event data fault, of any kind
        error = f"cannot render: {type(exc).__name__}: {exc}"
        return _result(delivery, started, error=error[:500])
    message["From"] = pool.config.sender
    try:
        async with asyncio.timeout(timeout):
            errors_by_recipient, answer = await pool.send(message)
    except TimeoutError as exc:
        error = str(exc) or f"no answer within {timeout:g}s"
        return _result(delivery, started, error=f"TimeoutError: {error}"[:500])
    except (aiosmtplib.SMTPException, OSError) as exc:
        return _result(delivery, started, error=f"{type(exc).__name__}: {exc}"[:500])
    if errors_by_recipient:
        return _result(delivery, started, error=f"refused: {errors_by_recipient}"[:500])
    return _result(delivery, started, excerpt=answer[:1024])


def _links(delivery: Delivery, public_url: str, secret_key: str) -> dict[str, Any]:
    event, data = delivery.event, delivery.event.data
    if event.type == events.INVITATION_SENT:
        token = ids.link_token(secret_key, INVITE_LINK, data["invitation_id"], data["link_nonce"])
        return {"link": f"{public_url}/invite/{token}"}
    if event.type == events.PASSWORD_RESET_REQUESTED:
        token = ids.link_token(secret_key, RESET_LINK, data["reset_id"], data["link_nonce"])
        return {"link": f"{public_url}/reset/{token}"}
    if event.type in _TO_APPROVERS:
        return _decision_links(data, delivery.target, public_url, secret_key)
    return {}


def _decision_links(
    data: dict[str, Any], recipient: str, public_url: str, secret_key: str
) -> dict[str, Any]:
    """The approval's page, and ``recipient``'s own Approve and Reject links when the event
    emailed them as one who may decide (expiring at the approval's deadline). The approval's
    id is ``id`` in ``approval.created``, ``approval_id`` in reminders and escalations."""
    approval_id = data["id"] if "id" in data else data["approval_id"]
    links: dict[str, Any] = {
        "open_link": f"{public_url}/approvals/{approval_id}",
        "approve_link": None,
        "reject_link": None,
    }
    emailed = {person["email"]: person["user_id"] for person in data.get("emailed", [])}
    user_id = emailed.get(recipient)
    if user_id is not None:
        deadline = datetime.fromisoformat(data["deadline_at"])
        for verdict in Verdict:
            token = ids.decision_link_token(secret_key, approval_id, user_id, verdict, deadline)
            links[f"{verdict}_link"] = f"{public_url}/decide/{token}"
    return links


def _approval_values(data: dict[str, Any]) -> dict[str, Any]:
    """What an approval's email shows: requesters' text is cut to a readable length, and is
    never markup (the HTML templates escape it)."""
    context, more = approvals.readable_context(data["context"])
    return {
        "title_line": approvals.shortened(" ".join(data["title"].split()), 150),
        "body": approvals.shortened(data["body"].strip(), MAX_BODY_CHARS),
        "context_rows": context,
        "context_more": more,
        "deadline": _readable(data["deadline_at"]),
        "rules": _rules_in_words(data["policy"]),
    }


def _rules_in_words(rules: dict[str, Any]) -> list[str]:
    found = policies.rules_in_words(rules)
    if rules.get("link_requires_login"):  # events written before it existed lack it
        found.append("The links ask you to sign in to signoff first.")
    return found


def _event_values(envelope: dict[str, Any], public_url: str) -> dict[str, Any]:
    """What the generic template shows of a public envelope."""
    data = envelope["data"]
    is_approval = envelope["type"].startswith("approval.")
    title = " ".join(str(data.get("title") or envelope["subject"]).split())  # one line
    status = f" ({data['status']})" if isinstance(data.get("status"), str) else ""
    return {
        "type": envelope["type"],
        "headline": f"{title}{status}",
        "description": events.event_type(envelope["type"]).description,
        "rows": _summary(envelope),
        "link": f"{public_url}/approvals/{envelope['subject']}" if is_approval else None,
    }


def _summary(envelope: dict[str, Any]) -> list[tuple[str, str]]:
    data = envelope["data"]
    rows = [("Subject", envelope["subject"])]
    if data.get("title"):
        rows.append(("Title", str(data["title"])))
    if data.get("previous_status") and data.get("status"):
        rows.append(("Status", f"{data['previous_status']} -> {data['status']}"))
    elif data.get("status"):
        rows.append(("Status", str(data["status"])))
    if isinstance(data.get("reason"), str) and data["reason"]:
        rows.append(("Reason", data["reason"]))
    decision = data.get("decision")
    if isinstance(decision, dict):
        said = f": {decision['comment']}" if decision.get("comment") else ""
        rows.append(("Decision", f"{decision.get('verdict')} by {decision.get('user')}{said}"))
    outcome = data.get("outcome")
    if isinstance(outcome, dict) and outcome.get("decided_by"):
        said = f": {outcome['comment']}" if outcome.get("comment") else ""
        rows.append(("Outcome", f"{outcome.get('status')}, by {outcome['decided_by']}{said}"))
    if data.get("deadline_at") and data.get("status") == "pending":
        rows.append(("Deadline", _readable(data["deadline_at"])))
    rows += [("By", envelope["actor"]), ("At", _readable(envelope["timestamp"]))]
    return rows


def _readable(value: object) -> str:
    if not isinstance(value, str):
        return ""
    return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M UTC")


def _result(
    delivery: Delivery, started: float, *, error: str | None = None, excerpt: str | None = None
) -> AttemptResult:
    return AttemptResult(
        delivery_id=delivery.id,
        ok=error is None,
        status_code=None,
        error=error,
        latency_ms=int((time.perf_counter() - started) * 1000),
        response_excerpt=excerpt,
    )
