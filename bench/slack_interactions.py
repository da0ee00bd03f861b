"""Slack interactivity benchmark: does ``POST /slack/interactions`` answer well within
Slack's three seconds, even when Slack itself is slow?

A signoff server (uvicorn, in this process, on a fresh SQLite file) and the local Slack Web
API of the tests (``tests/slack_api.py``), made to hold every answer for ``--slack-delay``
seconds (1.5 by default: ``users.info`` and the ``response_url`` slow, yet within signoff's
own 2 s cut-off). ``--clicks`` approvals are posted to a channel, and each
gets a signed Approve click from a Slack user signoff has never seen (so each click needs a
``users.info`` lookup by email). For each click: the time until signoff's answer, and the
time until the clicker's ephemeral reply arrived at the fake Slack. Prints p50, p99 and max.

    .venv/bin/python bench/slack_interactions.py [--clicks N] [--slack-delay S]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.slack_api import SlackApi, interaction

from signoff import Client
from signoff.settings import Settings
from signoff.web.app import create_app

ADMIN_KEY = "sok_bench-admin-key-0123456789abcdef0123456789"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=20)
    parser.add_argument("--slack-delay", type=float, default=1.5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, SlackApi() as slack:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        settings = Settings(
            database_url=f"sqlite:///{tmp}/bench.db",
            public_url=url,
            admin_api_key=ADMIN_KEY,
            worker_max_sleep_seconds=0.2,
            **slack.settings(),
        )
        server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.01)
        try:
            answers, replies = run(url, slack, args.clicks, args.slack_delay)
        finally:
            server.should_exit = True
            thread.join(timeout=15)
    print(f"{args.clicks} clicks, Slack answering after {args.slack_delay} s")
    report("signoff's answer to Slack", answers)
    report("ephemeral reply at Slack", replies)


def run(url: str, slack: SlackApi, clicks: int, delay: float) -> tuple[list[float], list[float]]:
    with Client(url, ADMIN_KEY) as admin:
        admin.subscriptions.create("bench", kind="slack", target="#approvals")
        for n in range(clicks):
            email = f"approver{n}@example.com"
            admin.people.create_user(email)
            slack.users[f"U0BENCH{n:04d}"] = email
            admin.approvals.create(title=f"Bench {n}", approvers=[email])
        messages = sorted(slack.posted(clicks), key=lambda m: m.ts)
    slack.delay = delay
    answers, sent_at = [], []
    with httpx.Client(base_url=url) as web:
        for n, message in enumerate(messages):
            body, headers = interaction(
                user_id=f"U0BENCH{n:04d}",
                action_id="signoff_approve",
                value=message.buttons[0]["value"],
                channel=message.channel,
                message_ts=message.ts,
                response_url=slack.response_url(n),
            )
            started = time.monotonic()
            answer = web.post("/slack/interactions", content=body, headers=headers)
            answers.append(time.monotonic() - started)
            sent_at.append(started)
            assert answer.status_code == 200, answer.text
    slack.wait_for(
        lambda: len(slack.responses) >= clicks, "every reply", timeout=60 + clicks * delay
    )
    replied_at = {call.path: call.at for call in slack.responses}
    replies = [replied_at[f"/response/{n}"] - start for n, start in enumerate(sent_at)]
    return answers, replies


def report(what: str, seconds: list[float]) -> None:
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(
        f"  {what:28} p50 {statistics.median(ordered) * 1000:7.1f} ms"
        f"   p99 {p99 * 1000:7.1f} ms   max {ordered[-1] * 1000:7.1f} ms"
    )


if __name__ == "__main__":
    main()
