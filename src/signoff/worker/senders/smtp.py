"""SMTP connections kept open between messages.

Opening a connection costs a TCP handshake, the greeting, EHLO, usually STARTTLS (a TLS
handshake and EHLO again) and a login: several round trips before the first byte of a
message. A team of fifty approvers is fifty messages, so the dispatcher sends them over
connections it keeps: a connection is taken for one message at a time, put back after a
success, and closed after any failure (its state is then unknown). A connection idle for
longer than ``idle_timeout`` is closed rather than reused, since servers drop idle clients
(commonly after 30 s to 5 min); and one that the server dropped anyway is replaced once,
because the message cannot have been accepted before the server answered the first command.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from email.message import EmailMessage

import aiosmtplib

from signoff.settings import Settings

DEFAULT_IDLE_TIMEOUT = 20.0  # seconds; below the usual server idle limits


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


class Pool:
    """Connections to one SMTP server, up to ``max_idle`` kept between messages. How many are
    open at once is bounded by the caller (the dispatcher's concurrency)."""

    def __init__(
        self,
        config: SmtpConfig,
        *,
        max_idle: int,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    ) -> None:
        self.config = config
        self.max_idle = max_idle
        self.idle_timeout = idle_timeout
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []  # with when it was put back
        self.opened = 0  # connections opened so far, for tests and benchmarks

    async def send(self, message: EmailMessage) -> tuple[dict[str, aiosmtplib.SMTPResponse], str]:
        """Send ``message`` over a kept connection, or a new one; what aiosmtplib's
        ``send_message`` returns (recipients refused, the server's last answer)."""
        reused = self._take()
        if reused is not None:
            try:
                return await self._send_over(reused, message)
            except aiosmtplib.SMTPServerDisconnected:
                pass  # dropped while idle: try once more on a new connection
        return await self._send_over(await self._open(), message)

    def close(self) -> None:
        """Drop the kept connections (without QUIT: this runs while the worker stops)."""
        idle, self._idle = self._idle, []
        for smtp, _ in idle:
            smtp.close()

    async def _send_over(
        self, smtp: aiosmtplib.SMTP, message: EmailMessage
    ) -> tuple[dict[str, aiosmtplib.SMTPResponse], str]:
        try:
            answer = await smtp.send_message(message)
        except BaseException:
            smtp.close()
            raise
        self._put_back(smtp)
        return answer

    def _take(self) -> aiosmtplib.SMTP | None:
        now = time.monotonic()
        while self._idle:
            smtp, since = self._idle.pop()  # the most recently used: the likeliest alive
            if smtp.is_connected and now - since < self.idle_timeout:
                return smtp
            smtp.close()
        return None

    def _put_back(self, smtp: aiosmtplib.SMTP) -> None:
        if len(self._idle) >= self.max_idle or not smtp.is_connected:
            smtp.close()
            return
        self._idle.append((smtp, time.monotonic()))

    async def _open(self) -> aiosmtplib.SMTP:
        config = self.config
        smtp = aiosmtplib.SMTP(
            hostname=config.host,
            port=config.port,
            username=config.username,
            password=config.password,
            use_tls=config.security == "tls",
            start_tls=config.security == "starttls",
            timeout=config.timeout,
        )
        try:
            await smtp.connect()
        except BaseException:  # refused, or cut off by the caller's timeout
            smtp.close()
            raise
        self.opened += 1
        return smtp
