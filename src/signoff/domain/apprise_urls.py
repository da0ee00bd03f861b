"""Apprise URLs: one string that names a notification service and holds its credentials
(``twilio://SID:TOKEN@+15551234567/+15557654321``, ``discord://ID/TOKEN``,
``ntfys://ntfy.sh/topic``, ``json://hooks.example.com/path``). The apprise library parses
them; this module says whether apprise knows one, how to show one without its secrets, and
which hosts its service connects to, so those can be held to the address rules webhooks
follow (``domain/destinations.py``).

Most services' URLs name the host to connect to (``json://``, ``form://``, ``ntfy`` on your
own server, Mattermost, Gotify, email's SMTP server, ...): that host is resolved and checked
before every send. A few services only ever talk to their own public API, whatever the URL
says (``FIXED_HOSTS``): the part of their URL where a host would be is an account id or a
token, and there is nothing to check. A URL that names no host and is not one of those (a
desktop notification, say) is refused: signoff sends to networks, not to its own machine.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import Any
from urllib.parse import urlsplit

import apprise
from apprise.plugins.matrix import NotifyMatrix

from signoff import errors

# Services whose apprise plugin posts only to the service's own API at a fixed public host
# (Twilio's api.twilio.com, Discord's discord.com, Slack's hooks.slack.com, Telegram's
# api.telegram.org, Pushover's and Pushbullet's APIs). Checked in their plugins' source: none
# takes a host from the URL.
FIXED_HOSTS = frozenset({"twilio", "discord", "slack", "tgram", "pover", "pbul"})

Plugin = Any  # an apprise plugin instance (apprise.plugins.NotifyBase); apprise is untyped here


def plugin(url: str) -> Plugin:
    """The apprise plugin for ``url``; ``UnknownAppriseUrl`` when apprise does not know its
    scheme or cannot read the rest of it."""
    # apprise says why it refused a URL in a warning that quotes the URL, secrets and all:
    # dropped, for this thread only (others may be sending and logging their reasons).
    logger = logging.getLogger("apprise")
    thread = threading.get_ident()

    def others(record: logging.LogRecord) -> bool:
        return record.thread != thread

    logger.addFilter(others)
    try:
        found = apprise.Apprise.instantiate(url)
    finally:
        logger.removeFilter(others)
    if found is None:
        scheme = urlsplit(url).scheme or "(none)"
        raise errors.UnknownAppriseUrl(
            f"apprise does not recognise this URL (scheme {scheme!r}), or it lacks a part its "
            "service needs: see https://github.com/caronc/apprise/wiki for each service's form",
            field="target",
        )
    if isinstance(found, NotifyMatrix):
        # Matrix's .well-known discovery would send to whatever host the named server's
        # answer names, past the address check of the host the URL names: never.
        found.discovery = False
    return found


def check(url: str) -> None:
    """``UnknownAppriseUrl`` unless apprise can send to ``url``; ``InvalidInput`` when the
    host its service connects to cannot be told from it (nothing could be checked before a
    send, so none would ever go)."""
    scheme = urlsplit(url).scheme
    if hosts(plugin(url), scheme) is None:
        raise errors.InvalidInput(
            f"{scheme}:// names no network host signoff can check: signoff sends only to "
            "services on the network whose host the URL names (or fixed public services)",
            field="target",
        )


def shown(url: str, *, whole: bool = False) -> str:
    """``url`` fit for people, logs and audit entries: apprise's privacy form (each
    service's tokens and passwords cut to their first and last characters), without its
    query unless ``whole``; a digest when apprise cannot read it."""
    try:
        private = str(plugin(url).url(privacy=True))
    except errors.UnknownAppriseUrl:
        digest = hashlib.sha256(url.encode()).hexdigest()[:8]
        return f"{urlsplit(url).scheme}://…#{digest}"
    return private if whole else private.split("?", 1)[0].rstrip("/")


def redacted(url: str) -> str:
    """``url`` fit for people who may not see any of its secrets (and for logs): the scheme,
    the host its service connects to when the URL names one (never the part of a fixed-host
    service's URL where a host would be: a token there), and a digest that changes when
    anything else does. Apprise's privacy form keeps too much for them: a ``json://`` path
    (often the endpoint's token) and an ntfy topic (the only secret of an ntfy.sh topic)."""
    scheme = urlsplit(url).scheme
    digest = hashlib.sha256(url.encode()).hexdigest()[:8]
    try:
        found = hosts(plugin(url), scheme)
    except errors.UnknownAppriseUrl:
        found = None
    host = found[0][0] if found else ""
    return f"{scheme}://{host}/…#{digest}" if host else f"{scheme}://…#{digest}"


def hosts(found: Plugin, scheme: str) -> list[tuple[str, int | None]] | None:
    """The (host, port) pairs the service behind ``found`` connects to; ``[]`` for a
    service with a fixed public host; ``None`` when the URL names none signoff can check."""
    if scheme.lower() in FIXED_HOSTS:
        return []
    if scheme.lower().startswith("ntfy") and str(getattr(found, "mode", "")) == "cloud":
        return []  # ntfy://topic goes to ntfy.sh
    smtp_host = getattr(found, "smtp_host", None)
    host = smtp_host or getattr(found, "host", None)
    if not isinstance(host, str) or not host:
        return None
    port = getattr(found, "port", None)
    return [(host, port if isinstance(port, int) else None)]
