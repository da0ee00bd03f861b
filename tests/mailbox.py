"""A real SMTP server on loopback (aiosmtpd), for email tests: it keeps every message and
lets a test wait for the one sent to an address."""

from __future__ import annotations

import email
import email.policy
import re
import socket
import threading
import time
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


class Mailbox:
    def __init__(self, port: int | None = None) -> None:
        """A server on ``port`` (say, to stand in for one that stopped), or on a free one."""
        self.messages: list[EmailMessage] = []
        self._changed = threading.Condition()
        if port is None:
            with socket.socket() as probe:  # aiosmtpd needs a concrete port to check it started
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
        self.port = port
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._changed:
            self.messages.append(message)
            self._changed.notify_all()
        return "250 OK kept"

    def start(self) -> Mailbox:
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop the server (again: nothing), dropping every client."""
        if self._controller.loop.is_running():
            self._controller.stop()

    def wait_for(self, to: str, *, count: int = 1, timeout: float = 10.0) -> list[EmailMessage]:
        """The first ``count`` messages to ``to``, waiting for them to arrive."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [m for m in self.messages if m["To"] == to]
                if len(found) >= count:
                    return found[:count]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no email to {to} within {timeout}s: {found}")
                self._changed.wait(left)


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def html_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def link_in(message: EmailMessage, path: str) -> str:
    """The first link to ``path`` (e.g. ``/invite/``) in the plain-text part."""
    found = re.search(rf"https?://\S+{re.escape(path)}\S+", text_of(message))
    assert found, text_of(message)
    return found.group(0)
