"""A Slack Web API on loopback that checks every request as Slack would receive it, answers in
Slack's own format, and plays the part of Slack towards signoff's interactivity endpoint.

* ``POST /api/chat.postMessage`` and ``/api/chat.update``: JSON bodies
  (``application/json;charset=utf-8``) with ``Authorization: Bearer <bot token>``; the blocks
  are checked against Block Kit's rules (block and element types, text lengths, field and
  block counts, button values and styles, unique action ids). A request that breaks one is
  answered ``{"ok": false, "error": "invalid_blocks"}`` and noted in ``violations``.
* ``GET /api/users.info?user=U...``: the member's profile with its email, or ``user_not_found``;
  a member's ``is_email_confirmed`` is false when their id is in ``unconfirmed``, and their
  ``team_id`` is ``other_teams``' when listed there (a member of another workspace).
* ``POST /api/auth.test``: who the bot token is, with the installed workspace's ``team_id``.
* ``POST /response/<n>``: a click's ``response_url``, recording what signoff answered.

``fail_next`` answers the next requests with HTTP 500, ``ratelimit_next`` with 429 and
``Retry-After``, ``error_next`` with ``ok: false`` and that error; ``delay`` holds every
answer. ``interaction`` builds a ``block_actions`` payload in Slack's real shape and signs it
as Slack does (v0 HMAC-SHA256 of ``v0:<timestamp>:<body>`` under the signing secret).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

BOT_TOKEN = "xoxb-test-0123456789-abcdefghijklmnop"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TEAM_ID = "T0TESTTEAM"
# auth.test's answer for a bot token, as Slack gives it
AUTH_TEST = {
    "ok": True,
    "url": "https://signoff-test.slack.com/",
    "team": "signoff-test",
    "user": "signoff",
    "team_id": TEAM_ID,
    "user_id": "U0SIGNOFFBOT",
    "bot_id": "B0SIGNOFFBOT",
    "is_enterprise_install": False,
}
_BLOCK_TYPES = {"header", "section", "context", "actions", "divider"}


@dataclass
class Call:
    method: str  # chat.postMessage, chat.update, users.info, response_url
    headers: dict[str, str]
    body: dict[str, Any]
    at: float
    path: str = ""


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    history: list[list[dict[str, Any]]] = field(default_factory=list)  # earlier blocks

    @property
    def buttons(self) -> list[dict[str, Any]]:
        return [
            element
            for block in self.blocks
            if block["type"] == "actions"
            for element in block["elements"]
        ]

    @property
    def all_text(self) -> str:
        return json.dumps(self.blocks)


class SlackApi:
    def __init__(self) -> None:
        self.channels = {"#approvals": "C0APPROVALS", "C0OTHERCHAN": "C0OTHERCHAN"}
        self.users: dict[str, str] = {}  # Slack user id -> profile email
        self.unconfirmed: set[str] = set()  # Slack user ids whose email is not confirmed
        self.other_teams: dict[str, str] = {}  # Slack user id -> their (other) workspace
        self.calls: list[Call] = []
        self.messages: dict[tuple[str, str], Message] = {}
        self.responses: list[Call] = []  # what came to response_urls
        self.violations: list[str] = []
        self.fail_next = 0
        self.ratelimit_next = 0
        self.error_next: list[str] = []
        self.delay = 0.0  # seconds before each answer: a slow Slack
        self._ts = 1_700_000_000_000100
        self._lock = threading.Condition()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                api._handle(self, "GET")

            def do_POST(self) -> None:
                api._handle(self, "POST")

            def log_message(self, *_args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.api_url = self.base + "/api/"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> SlackApi:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def settings(self) -> dict[str, Any]:
        return {
            "slack_bot_token": BOT_TOKEN,
            "slack_signing_secret": SIGNING_SECRET,
            "slack_api_url": self.api_url,
        }

    def response_url(self, n: int = 1) -> str:
        return f"{self.base}/response/{n}"

    # -- waiting, from the test's thread ---------------------------------------------------

    def wait_for(self, condition: Any, what: str, timeout: float = 15.0) -> Any:
        deadline = time.monotonic() + timeout
        with self._lock:
            while not (found := condition()):
                left = deadline - time.monotonic()
                assert left > 0, f"{what} did not happen in {timeout}s; calls: {self.calls}"
                self._lock.wait(min(left, 0.1))
        return found

    def posted(self, count: int = 1) -> list[Message]:
        def found() -> list[Message]:
            return list(self.messages.values()) if len(self.messages) >= count else []

        return self.wait_for(found, f"{count} posted message(s)")

    def calls_of(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    # -- the server side ---------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, verb: str) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("content-length", 0))
        raw = handler.rfile.read(length)
        headers = {k.lower(): v for k, v in handler.headers.items()}
        time.sleep(self.delay)
        with self._lock:
            status, answer, extra = self._answer(verb, parts.path, parts.query, headers, raw)
            self._lock.notify_all()
        body = json.dumps(answer).encode() if answer is not None else b""
        handler.send_response(status)
        handler.send_header("content-type", "application/json; charset=utf-8")
        for name, value in extra.items():
            handler.send_header(name, value)
        handler.send_header("content-length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _answer(
        self, verb: str, path: str, query: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        if path.startswith("/response/"):
            return self._response_url(verb, path, headers, raw)
        method = path.removeprefix("/api/")
        if self.fail_next > 0:
            self.fail_next -= 1
            self.calls.append(Call(method, headers, {}, time.monotonic()))
            return 500, {"ok": False, "error": "fatal_error"}, {}
        if self.ratelimit_next > 0:
            self.ratelimit_next -= 1
            self.calls.append(Call(method, headers, {}, time.monotonic()))
            return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"}
        if headers.get("authorization") != f"Bearer {BOT_TOKEN}":
            self.violations.append(f"{path}: no bot token")
            return 200, {"ok": False, "error": "not_authed"}, {}
        if method == "users.info":
            return self._users_info(verb, query, headers)
        if method == "auth.test":
            self.calls.append(Call(method, headers, {}, time.monotonic()))
            if verb != "POST":
                self.violations.append(f"auth.test: {verb}")
            return 200, AUTH_TEST, {}
        if method not in ("chat.postMessage", "chat.update"):
            self.violations.append(f"{verb} {path}: not a method signoff should call")
            return 404, {"ok": False, "error": "unknown_method"}, {}
        if verb != "POST" or headers.get("content-type") != "application/json;charset=utf-8":
            self.violations.append(f"{method}: {verb} {headers.get('content-type')}")
            return 200, {"ok": False, "error": "invalid_form_data"}, {}
        body = json.loads(raw)
        self.calls.append(Call(method, headers, body, time.monotonic()))
        if self.error_next:
            return 200, {"ok": False, "error": self.error_next.pop(0)}, {}
        problems = block_problems(body)
        if problems:
            self.violations += [f"{method}: {problem}" for problem in problems]
            return 200, {"ok": False, "error": "invalid_blocks", "errors": problems}, {}
        if method == "chat.postMessage":
            return self._post(body)
        return self._update(body)

    def _post(self, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        channel = self.channels.get(body["channel"])
        if channel is None:
            return 200, {"ok": False, "error": "channel_not_found"}, {}
        self._ts += 100
        ts = f"{self._ts // 1_000_000}.{self._ts % 1_000_000:06d}"
        self.messages[(channel, ts)] = Message(channel, ts, body["text"], body["blocks"])
        message = {"type": "message", "text": body["text"], "blocks": body["blocks"], "ts": ts}
        return 200, {"ok": True, "channel": channel, "ts": ts, "message": message}, {}

    def _update(self, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        message = self.messages.get((body["channel"], body.get("ts", "")))
        if message is None:
            return 200, {"ok": False, "error": "message_not_found"}, {}
        message.history.append(message.blocks)
        message.text, message.blocks = body["text"], body["blocks"]
        answer = {"ok": True, "channel": message.channel, "ts": message.ts, "text": message.text}
        return 200, answer, {}

    def _users_info(
        self, verb: str, query: str, headers: dict[str, str]
    ) -> tuple[int, Any, dict[str, str]]:
        asked = parse_qs(query)
        self.calls.append(Call("users.info", headers, dict(asked), time.monotonic()))
        user_id = (asked.get("user") or [""])[0]
        if verb != "GET" or user_id not in self.users:
            return 200, {"ok": False, "error": "user_not_found"}, {}
        profile = {"email": self.users[user_id], "real_name": user_id, "display_name": user_id}
        user = {
            "id": user_id,
            "team_id": self.other_teams.get(user_id, TEAM_ID),
            "name": user_id.lower(),
            "is_email_confirmed": user_id not in self.unconfirmed,
            "profile": profile,
        }
        return 200, {"ok": True, "user": user}, {}

    def _response_url(
        self, verb: str, path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        if verb != "POST" or not headers.get("content-type", "").startswith("application/json"):
            self.violations.append(f"response_url: {verb} {headers.get('content-type')}")
        call = Call("response_url", headers, json.loads(raw), time.monotonic(), path)
        self.responses.append(call)
        return 200, None, {}


def block_problems(body: dict[str, Any]) -> list[str]:
    """What Slack would refuse in a message's ``text`` and ``blocks``."""
    found: list[str] = []
    blocks = body.get("blocks")
    if not isinstance(body.get("text"), str) or not body["text"]:
        found.append("no fallback text")
    if not isinstance(blocks, list) or not 0 < len(blocks) <= 50:
        return [*found, "blocks must be a list of 1 to 50"]
    action_ids: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind not in _BLOCK_TYPES:
            found.append(f"unknown block type {kind!r}")
        elif kind == "header":
            found += _text_problems(block["text"], 150, plain=True)
        elif kind == "section":
            if "text" not in block and "fields" not in block:
                found.append("a section needs text or fields")
            if "text" in block:
                found += _text_problems(block["text"], 3000)
            fields = block.get("fields", [])
            if len(fields) > 10:
                found.append("more than 10 fields")
            for one in fields:
                found += _text_problems(one, 2000)
        elif kind == "context":
            if not 0 < len(block["elements"]) <= 10:
                found.append("a context has 1 to 10 elements")
            for one in block["elements"]:
                found += _text_problems(one, 3000)
        elif kind == "actions":
            for element in block["elements"]:
                found += _button_problems(element)
                action_ids.append(element.get("action_id", ""))
    if len(action_ids) != len(set(action_ids)):
        found.append("action_ids repeat")
    return found


def _text_problems(text: dict[str, Any], limit: int, *, plain: bool = False) -> list[str]:
    kinds = ("plain_text",) if plain else ("plain_text", "mrkdwn")
    if text.get("type") not in kinds:
        return [f"text type {text.get('type')!r}"]
    value = text.get("text")
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        return [f"a text of {len(value or '')} characters (1 to {limit})"]
    return []


def _button_problems(button: dict[str, Any]) -> list[str]:
    if button.get("type") != "button":
        return [f"element type {button.get('type')!r}"]
    found = _text_problems(button["text"], 75, plain=True)
    if not 0 < len(button.get("action_id", "")) <= 255:
        found.append("a button's action_id is 1 to 255 characters")
    if "value" in button and not 0 < len(button["value"]) <= 2000:
        found.append("a button's value is 1 to 2000 characters")
    if "url" in button and not 0 < len(button["url"]) <= 3000:
        found.append("a button's url is 1 to 3000 characters")
    if button.get("style") not in (None, "primary", "danger"):
        found.append(f"button style {button['style']!r}")
    return found


def interaction(
    *,
    user_id: str,
    action_id: str,
    value: str,
    channel: str,
    message_ts: str,
    response_url: str,
    timestamp: int | None = None,
    secret: str = SIGNING_SECRET,
    team_id: str = TEAM_ID,
) -> tuple[bytes, dict[str, str]]:
    """A click on a button, as Slack POSTs it: a form whose ``payload`` is the JSON of a
    ``block_actions`` interaction, with its signature headers."""
    action_ts = f"{time.time():.6f}"
    payload = {
        "type": "block_actions",
        "user": {
            "id": user_id,
            "username": user_id.lower(),
            "name": user_id.lower(),
            "team_id": team_id,
        },
        "api_app_id": "A0SIGNOFF",
        "token": "verification-token-unused",
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "is_ephemeral": False,
        },
        "trigger_id": f"1234567890.{TEAM_ID}.abcdef",
        "team": {"id": team_id, "domain": "signoff-test"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": "approvals"},
        "message": {"type": "message", "ts": message_ts, "text": "Approval requested"},
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [
            {
                "action_id": action_id,
                "block_id": "signoff_decide",
                "text": {"type": "plain_text", "text": action_id, "emoji": True},
                "value": value,
                "type": "button",
                "action_ts": action_ts,
            }
        ],
    }
    body = urlencode({"payload": json.dumps(payload)}).encode()
    return body, signed_headers(body, timestamp=timestamp, secret=secret)


def signed_headers(
    body: bytes, *, timestamp: int | None = None, secret: str = SIGNING_SECRET
) -> dict[str, str]:
    sent_at = str(int(time.time()) if timestamp is None else timestamp)
    base = b"v0:" + sent_at.encode() + b":" + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-request-timestamp": sent_at,
        "x-slack-signature": f"v0={digest}",
        "user-agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
    }
