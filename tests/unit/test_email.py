"""Emails rendered from events: an approval's email to each person who may decide it, with
their own decision links, and requesters' text never taken for markup."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

from signoff.domain import events, ids
from signoff.domain.deliveries import Delivery, Purpose, TargetKind
from signoff.worker.senders import email

KEY = "test-secret-key"
NOW = datetime(2026, 11, 22, 6, 9, 17, tzinfo=UTC)
HOSTILE = '<script>alert("title")</script><img src=x onerror=alert(1)>'


def approval_created(**data: Any) -> dict[str, Any]:
    return {
        "id": "ap_xvrhmtfm6gt1",
        "title": "Apply batch 2026-11-22 for customer 42?",
        "body": "6.4% of rows were flagged.\nThe threshold is 6%.",
        "context": {"customer": 42, "flagged_ratio": 0.064, "tables": ["orders", "refunds"]},
        "deadline_at": (NOW + timedelta(hours=24)).isoformat(),
        "policy": {
            "name": None,
            "quorum": 2,
            "rejections_to_reject": 1,
            "requester_can_decide": False,
            "comment_required": True,
            "form": None,
            "link_requires_login": False,
        },
        "emailed": [
            {"user_id": "usr_alice0000000", "email": "alice@example.com"},
            {"user_id": "usr_bob000000000", "email": "bob@example.com"},
        ],
    } | data


def render(data: dict[str, Any], to: str = "alice@example.com") -> EmailMessage:
    event = events.Event("evt_1", events.APPROVAL_CREATED, data["id"], "user:usr_r", data, NOW)
    delivery = Delivery(
        "msg_1", event, TargetKind.EMAIL, to, attempts=0, created_at=NOW, purpose=Purpose.APPROVER
    )
    return email.render(delivery, public_url="https://signoff.example.com/", secret_key=KEY)


def text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def html(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def links(body: str) -> list[str]:
    return re.findall(r"https://signoff\.example\.com/decide/[^\s\"<]+", body)


def test_an_approvers_email_says_what_is_asked_by_when_and_under_which_rules():
    message = render(approval_created())
    assert message["Subject"] == "Decision needed: Apply batch 2026-11-22 for customer 42?"
    body = text(message)
    assert "6.4% of rows were flagged.\nThe threshold is 6%." in body
    assert '  customer: 42\n  flagged_ratio: 0.064\n  tables: ["orders", "refunds"]' in body
    assert "Decide by 2026-11-23 06:09 UTC." in body
    assert "2 approvals approve it. Any rejection rejects it." in body
    assert "Every decision needs a comment." in body
    assert "Open in signoff:\nhttps://signoff.example.com/approvals/ap_xvrhmtfm6gt1" in body


def test_each_approver_gets_their_own_approve_and_reject_links_in_both_parts():
    deadline = NOW + timedelta(hours=24)
    for person in approval_created()["emailed"]:
        to, user_id = person["email"], person["user_id"]
        message = render(approval_created(), to=to)
        approve, reject = links(text(message))
        assert approve.endswith(
            ids.decision_link_token(KEY, "ap_xvrhmtfm6gt1", user_id, "approve", deadline)
        )
        assert reject.endswith(
            ids.decision_link_token(KEY, "ap_xvrhmtfm6gt1", user_id, "reject", deadline)
        )
        assert links(html(message)) == [approve, reject]


def test_someone_the_event_did_not_email_as_an_approver_gets_no_decision_links():
    message = render(approval_created(), to="carol@example.com")
    assert links(text(message)) == []
    assert links(html(message)) == []
    assert "https://signoff.example.com/approvals/ap_xvrhmtfm6gt1" in html(message)


def test_the_event_alone_makes_no_link_without_the_server_key():
    data = approval_created()
    rendered = text(render(data))
    assert not any(link.rsplit("/", 1)[1] in str(data) for link in links(rendered))
    other = email.render(
        Delivery(
            "msg_1",
            events.Event("evt_1", events.APPROVAL_CREATED, data["id"], "user:u", data, NOW),
            TargetKind.EMAIL,
            "alice@example.com",
            attempts=0,
            created_at=NOW,
            purpose=Purpose.APPROVER,
        ),
        public_url="https://signoff.example.com",
        secret_key="another-key",
    )
    assert links(text(other)) != links(rendered)


def test_requesters_text_is_escaped_in_the_html_part_and_plain_in_the_text_part():
    data = approval_created(title=HOSTILE, body=HOSTILE, context={HOSTILE: HOSTILE})
    message = render(data)
    part = html(message)
    assert "<script" not in part
    assert "<img" not in part
    escaped = "&lt;script&gt;alert(&#34;title&#34;)&lt;/script&gt;"
    assert part.count(escaped) == 4  # the title, the body, a context key and its value
    assert HOSTILE in text(message)


def test_a_title_with_line_breaks_makes_a_one_line_subject():
    message = render(approval_created(title="Load\r\nBcc: eve@example.com\nbatch 7?"))
    assert message["Subject"] == "Decision needed: Load Bcc: eve@example.com batch 7?"
    assert message["Bcc"] is None


def test_a_long_body_and_a_large_context_are_cut_to_a_readable_email():
    context = {f"key{i}": "v" * 500 for i in range(30)}
    message = render(approval_created(body="b" * 10_000, context=context))
    body = text(message)
    assert "b" * 3990 in body
    assert "b" * 4000 not in body
    assert "  key19: " + "v" * 199 + "\u2026" in body
    assert "key20" not in body
    assert "... and 10 more in signoff" in body
    assert len(body) < 12_000


def test_an_event_written_before_link_requires_login_existed_still_renders():
    data = approval_created()
    del data["policy"]["link_requires_login"]
    assert "sign in" not in text(render(data))
    data["policy"]["link_requires_login"] = True
    assert "The links ask you to sign in to signoff first." in text(render(data))


def reminder_or_escalation(event_type: str, **data: Any) -> dict[str, Any]:
    """What ``approval.reminder_due`` and ``approval.escalated`` carry for an email."""
    found = approval_created()
    found["approval_id"] = found.pop("id")
    return found | {"reminder": 2, "reminders": 3, "status": "pending"} | data


def render_event(event_type: str, data: dict[str, Any], to: str) -> EmailMessage:
    event = events.Event("evt_2", event_type, data["approval_id"], "system:scheduler", data, NOW)
    delivery = Delivery(
        "msg_2", event, TargetKind.EMAIL, to, attempts=0, created_at=NOW, purpose=Purpose.APPROVER
    )
    return email.render(delivery, public_url="https://signoff.example.com/", secret_key=KEY)


def test_a_reminder_says_which_it_is_and_carries_the_approvers_own_links_to_the_deadline():
    data = reminder_or_escalation(events.APPROVAL_REMINDER_DUE)
    message = render_event(events.APPROVAL_REMINDER_DUE, data, "bob@example.com")
    assert message["Subject"] == (
        "Reminder: decide by 2026-11-23 06:09 UTC: Apply batch 2026-11-22 for customer 42?"
    )
    body = text(message)
    assert body.startswith("Reminder 2 of 3: you have not decided yet. Decide by 2026-11-23")
    assert "6.4% of rows were flagged." in body
    deadline = NOW + timedelta(hours=24)
    approve, reject = links(body)
    assert approve.endswith(
        ids.decision_link_token(KEY, "ap_xvrhmtfm6gt1", "usr_bob000000000", "approve", deadline)
    )
    assert links(html(message)) == [approve, reject]
    assert "Reminder 2 of 3" in html(message)


def test_an_escalation_email_tells_the_new_approver_they_may_decide():
    data = reminder_or_escalation(events.APPROVAL_ESCALATED)
    message = render_event(events.APPROVAL_ESCALATED, data, "alice@example.com")
    assert message["Subject"] == "Escalated to you: Apply batch 2026-11-22 for customer 42?"
    assert "you may decide it now" in text(message)
    assert len(links(text(message))) == 2
    unknown = render_event(events.APPROVAL_ESCALATED, data, "carol@example.com")
    assert links(text(unknown)) == []


async def test_an_email_that_cannot_be_rendered_is_a_failed_attempt_not_a_crash(mailbox):
    """No template exists for signoff's own email of approval.settled: send records a failed
    attempt (so the delivery is retried, then dead) instead of raising past the dispatcher."""
    from signoff.worker.senders import smtp

    settled = {"id": "ap_old", "title": "t", "status": "approved"}
    event = events.Event("evt_s", events.APPROVAL_SETTLED, "ap_old", "user:usr_r", settled, NOW)
    delivery = Delivery(
        "msg_1",
        event,
        TargetKind.EMAIL,
        "ops@example.com",
        attempts=1,
        created_at=NOW,
        purpose=Purpose.APPROVER,
    )
    config = smtp.SmtpConfig(
        host="127.0.0.1",
        port=mailbox.port,
        security="none",
        username=None,
        password=None,
        sender="signoff@example.com",
        timeout=5.0,
    )
    pool = smtp.Pool(config, max_idle=1)
    result = await email.send(
        delivery, pool, public_url="https://s.example", secret_key=KEY, timeout=5
    )
    assert not result.ok
    assert result.error is not None
    assert result.error.startswith("cannot render: ")
    assert mailbox.messages == []


async def test_a_send_to_a_server_that_never_answers_is_cut_off_at_the_delivery_timeout():
    """The SMTP server accepts the connection and says nothing: the attempt fails after the
    delivery timeout, however long aiosmtplib's own timeout (SIGNOFF_SMTP_TIMEOUT) is."""
    import asyncio
    import time

    from signoff.worker.senders import smtp

    held: list[asyncio.StreamWriter] = []

    async def silent(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # no greeting, ever

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    config = smtp.SmtpConfig(
        host="127.0.0.1",
        port=port,
        security="none",
        username=None,
        password=None,
        sender="signoff@example.com",
        timeout=60.0,
    )
    delivery = Delivery(
        "msg_1",
        events.Event(
            "evt_1",
            events.APPROVAL_CREATED,
            "ap_xvrhmtfm6gt1",
            "user:usr_r",
            approval_created(),
            NOW,
        ),
        TargetKind.EMAIL,
        "alice@example.com",
        attempts=0,
        created_at=NOW,
        purpose=Purpose.APPROVER,
    )
    started = time.monotonic()
    async with server:
        result = await email.send(
            delivery,
            smtp.Pool(config, max_idle=1),
            public_url="https://s.example",
            secret_key=KEY,
            timeout=0.5,
        )
        for writer in held:
            writer.close()
    assert time.monotonic() - started < 10
    assert not result.ok
    assert result.error == "TimeoutError: no answer within 0.5s"
