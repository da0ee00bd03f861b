"""Email: messages rendered from events with Jinja2 templates (HTML and plain text) and sent
over SMTP with aiosmtplib (STARTTLS, implicit TLS or plain, with optional login).

Templates live beside this module, one pair per event type (``<type>.html`` and
``<type>.txt``, the first line of the text one being the subject). Links that carry a secret
are built here, from the event's nonce and the server key, so no sendable link is ever
stored in the database.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

import aiosmtplib
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from signoff.domain import events, ids
from signoff.domain.accounts import INVITE_LINK, RESET_LINK
from signoff.domain.deliveries import AttemptResult, Delivery
from signoff.settings import Settings

_templates = Environment(
    loader=PackageLoader("signoff.worker.senders", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class SmtpConfig:
    host: str | None
    port: int
    security: str  # starttls | tls | none
    username: str | None
    password: str | None
    sender: str
    timeout: float

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig:
        default_port = {"starttls": 587, "tls": 465, "none": 25}[settings.smtp_security]
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port or default_port,
            security=settings.smtp_security,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            sender=settings.smtp_from,
            timeout=settings.delivery_timeout_seconds,
        )


def render(delivery: Delivery, *, public_url: str, secret_key: str) -> EmailMessage:
    """The message for one email delivery."""
    event = delivery.event
    base_url = public_url.rstrip("/")
    values: dict[str, Any] = {
        "data": event.data,
        "public_url": base_url,
        "expires_at": _readable(event.data.get("expires_at")),
    }
    values |= _links(event, base_url, secret_key)
    name = event.type.replace(".", "_")
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
    delivery: Delivery, config: SmtpConfig, *, public_url: str, secret_key: str
) -> AttemptResult:
    started = time.perf_counter()
    if config.host is None:
        return _result(delivery, started, error="SMTP is not configured (SIGNOFF_SMTP_HOST)")
    message = render(delivery, public_url=public_url, secret_key=secret_key)
    message["From"] = config.sender
    try:
        errors_by_recipient, answer = await aiosmtplib.send(
            message,
            hostname=config.host,
            port=config.port,
            username=config.username,
            password=config.password,
            use_tls=config.security == "tls",
            start_tls=config.security == "starttls",
            timeout=config.timeout,
        )
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        return _result(delivery, started, error=f"{type(exc).__name__}: {exc}"[:500])
    if errors_by_recipient:
        return _result(delivery, started, error=f"refused: {errors_by_recipient}"[:500])
    return _result(delivery, started, excerpt=answer[:1024])


def _links(event: events.Event, public_url: str, secret_key: str) -> dict[str, Any]:
    data = event.data
    if event.type == events.INVITATION_SENT:
        token = ids.link_token(secret_key, INVITE_LINK, data["invitation_id"], data["link_nonce"])
        return {"link": f"{public_url}/invite/{token}"}
    if event.type == events.PASSWORD_RESET_REQUESTED:
        token = ids.link_token(secret_key, RESET_LINK, data["reset_id"], data["link_nonce"])
        return {"link": f"{public_url}/reset/{token}"}
    return {}


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
