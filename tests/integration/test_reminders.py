"""Reminders and escalation end to end: a real server and its in-process scheduler, emails
read from a real SMTP server, events at a local webhook receiver, the CLI as a user runs it.
Durations are a few seconds, so time passes for real."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import httpx
import pytest

import signoff
from signoff.settings import Settings
from tests.conftest import RunningServer, _ThreadServer, smtp_settings
from tests.factories import ADMIN_KEY
from tests.integration.test_cli import signoff as run_cli
from tests.integration.test_decision_links import LINK, links_to
from tests.integration.test_portal import post
from tests.mailbox import Mailbox, text_of
from tests.receivers import Receiver


@pytest.fixture
def settings_overrides(mailbox: Mailbox) -> dict[str, object]:
    return smtp_settings(mailbox)


@pytest.fixture
def admin(server: RunningServer) -> Iterator[signoff.Client]:
    """Team ``data-owners`` (alice, bob), team ``oncall`` (carol), and a ``pipeline`` user."""
    with signoff.Client(server.url, api_key=server.admin_key) as client:
        for team in ("data-owners", "oncall"):
            client.people.create_team(team)
        for name in ("alice", "bob", "carol", "pipeline"):
            client.people.create_user(f"{name}@example.com")
        for name in ("alice", "bob"):
            client.people.add_member("data-owners", f"{name}@example.com")
        client.people.add_member("oncall", "carol@example.com")
        yield client


def client_of(server: RunningServer, admin: signoff.Client, name: str) -> signoff.Client:
    return signoff.Client(server.url, admin.people.create_key(user=f"{name}@example.com").key)


def gate(pipeline: signoff.Client, **fields: object) -> signoff.Approval:
    asked: dict[str, object] = {
        "title": "Apply batch 2026-11-25?",
        "body": "6.4% of rows were flagged.",
        "approvers": ["team:data-owners"],
        "policy": {"quorum": 2},
        "timeout": 120,
        "reminders": [3],
        "escalation": {"after": 5, "approvers": ["team:oncall"]},
    }
    return pipeline.approvals.create(**(asked | fields))  # type: ignore[arg-type]


def test_reminders_go_to_the_undecided_and_escalation_lets_the_team_decide_by_link(
    server, admin, mailbox
):
    pipeline, alice = client_of(server, admin, "pipeline"), client_of(server, admin, "alice")
    with Receiver() as receiver:
        admin.subscriptions.create(
            "nudges",
            kind="webhook",
            target=receiver.url,
            filter={"type": ["approval.reminder_due", "approval.escalated"]},
        )
        approval = gate(pipeline)
        alice.approvals.approve(approval.id)

        [_, reminder] = mailbox.wait_for("bob@example.com", count=2)
        assert reminder["Subject"].startswith("Reminder: decide by ")
        assert reminder["Subject"].endswith(": Apply batch 2026-11-25?")
        assert "Reminder 1 of 1: you have not decided yet." in text_of(reminder)
        assert "6.4% of rows were flagged." in text_of(reminder)
        assert len(LINK.findall(text_of(reminder))) == 2  # bob's own links, still valid
        assert links_to(mailbox, "bob@example.com", 2) == links_to(mailbox, "bob@example.com")

        [escalated] = mailbox.wait_for("carol@example.com")
        assert escalated["Subject"] == "Escalated to you: Apply batch 2026-11-25?"
        carols = links_to(mailbox, "carol@example.com")
        calls = receiver.wait_for(2)
    assert len(mailbox.wait_for("alice@example.com")) == 1  # she decided: no reminder
    assert [m["To"] for m in mailbox.messages].count("alice@example.com") == 1

    due, escalation = (call.event for call in calls)
    assert (due["type"], due["subject"], due["actor"]) == (
        "approval.reminder_due",
        approval.id,
        "system:scheduler",
    )
    assert (due["data"]["reminder"], due["data"]["reminders"]) == (1, 1)
    assert [p["email"] for p in due["data"]["undecided"]] == ["bob@example.com"]
    assert due["data"]["deadline_at"] == approval.deadline_at.isoformat()
    assert escalation["type"] == "approval.escalated"
    assert [r["name"] for r in escalation["data"]["previous_approvers"]] == ["data-owners"]
    assert [r["name"] for r in escalation["data"]["added_approvers"]] == ["oncall"]

    with httpx.Client(base_url=server.url, headers={"accept": "text/html"}) as browser:
        opened = browser.get(carols["approve"])
        assert opened.status_code == 200, opened.text
        decided = post(browser, carols["approve"], opened, comment="On call: fine.")
        assert decided.status_code == 200, decided.text
    settled = pipeline.approvals.get(approval.id)
    assert settled.status == "approved"
    assert [(d.user, d.channel) for d in settled.decisions] == [
        ("alice@example.com", "api"),
        ("carol@example.com", "link"),
    ]
    assert [r.status for r in settled.reminders] == ["done"]
    assert settled.reminders[0].sent_at is not None
    assert settled.escalation is not None
    assert (settled.escalation.status, settled.escalation.approvers[0].name) == ("done", "oncall")
    assert [a.name for a in settled.approvers] == ["data-owners", "oncall"]
    actions = [e.action for e in admin.people.audit(object_id=approval.id).items]
    assert actions[-4:] == [
        "approval.escalate",
        "approval.remind",
        "approval.decide",
        "approval.create",
    ]
    [remind] = admin.people.audit(object_id=approval.id, action="approval.remind").items
    assert remind.actor == "system:scheduler"


def test_a_settled_approval_gets_no_reminder_or_escalation(server, admin, mailbox):
    pipeline, alice = client_of(server, admin, "pipeline"), client_of(server, admin, "alice")
    approval = gate(pipeline, reminders=[2], escalation={"after": 3, "approvers": ["team:oncall"]})
    alice.approvals.reject(approval.id)
    later = gate(pipeline, title="Later", reminders=[4], escalation=None)  # fires after both
    mailbox.wait_for("bob@example.com", count=3)  # 2 created, then the later one's reminder
    reminded = [m for m in mailbox.messages if m["Subject"].startswith("Reminder")]
    assert [m["Subject"].endswith(": Later") for m in reminded] == [True, True]  # alice, bob
    assert "carol@example.com" not in [m["To"] for m in mailbox.messages]
    shown = pipeline.approvals.get(approval.id)
    assert [r.status for r in shown.reminders] == ["skipped"]
    assert shown.escalation is not None
    assert shown.escalation.status == "skipped"
    assert pipeline.approvals.get(later.id).reminders[0].status == "done"


def test_a_reminder_due_while_no_worker_runs_is_sent_by_the_next_one(settings: Settings, mailbox):
    first = _ThreadServer(settings)
    first.start()
    try:
        with signoff.Client(first.url, api_key=ADMIN_KEY) as admin:
            admin.people.create_user("alice@example.com")
            admin.people.create_user("pipeline@example.com")
            key = admin.people.create_key(user="pipeline@example.com").key
        with signoff.Client(first.url, api_key=key) as pipeline:
            approval = pipeline.approvals.create(
                title="Durable?", approvers=["alice@example.com"], reminders=[2]
            )
        mailbox.wait_for("alice@example.com")  # the creation email
    finally:
        first.stop()  # the server and its scheduler go away before the reminder is due
    time.sleep(2.5)  # past the reminder, with nobody running: the timer waits in the database
    assert [m["To"] for m in mailbox.messages] == ["alice@example.com"]
    second = _ThreadServer(settings)
    second.start()
    try:
        [_, reminder] = mailbox.wait_for("alice@example.com", count=2)
        assert reminder["Subject"].startswith("Reminder: decide by")
        with signoff.Client(second.url, api_key=key) as pipeline:
            assert pipeline.approvals.get(approval.id).reminders[0].status == "done"
    finally:
        second.stop()


def test_the_api_names_the_field_of_a_wrong_schedule(server, admin):
    key = admin.people.create_key(user="pipeline@example.com").key
    for asked, field in [
        ({"reminders": ["12h", "4h"]}, "reminders"),
        ({"reminders": ["30h"]}, "reminders"),
        ({"reminders": ["1h"] * 11}, "reminders"),
        ({"escalation": {"after": "2d", "approvers": ["team:oncall"]}}, "escalation.after"),
        ({"escalation": {"after": "1h", "approvers": []}}, "escalation/approvers"),
    ]:
        answer = httpx.post(
            f"{server.url}/v1/approvals",
            json={"title": "t", "approvers": ["alice@example.com"], **asked},
            headers={"authorization": f"Bearer {key}"},
        )
        assert answer.status_code == 422, (asked, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        problem = answer.json()
        assert problem["code"] == "invalid_input", problem
        named = [problem.get("field")] + [e["field"] for e in problem.get("errors", [])]
        assert field in named, problem


def test_the_cli_sets_and_shows_the_schedule(server, admin, mailbox):
    key = admin.people.create_key(user="pipeline@example.com").key
    env = {"SIGNOFF_URL": server.url, "SIGNOFF_API_KEY": key}
    created = json.loads(
        run_cli(
            "approvals",
            "create",
            "--title",
            "From the shell",
            "-a",
            "alice@example.com",
            "--remind",
            "1h",
            "--remind",
            "2h",
            "--escalate-after",
            "3h",
            "--escalate-to",
            "team:oncall",
            "--json",
            env=env,
        ).stdout
    )
    assert [r["status"] for r in created["reminders"]] == ["scheduled", "scheduled"]
    shown = run_cli("approvals", "show", created["id"], env=env).stdout
    assert re.search(r"reminder at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC: scheduled", shown), shown
    assert "escalation at " in shown
    assert "to team:oncall: scheduled" in shown
    refused = run_cli(
        "approvals",
        "create",
        "--title",
        "t",
        "-a",
        "alice@example.com",
        "--escalate-after",
        "1h",
        env=env,
        check=False,
    )
    assert refused.returncode == 1
    assert "--escalate-after and --escalate-to go together" in refused.stderr


def test_the_policies_cli_sets_and_shows_reminders_and_escalation(database_url):
    env = {"SIGNOFF_DATABASE_URL": database_url}
    run_cli("teams", "create", "oncall", env=env)
    made = json.loads(
        run_cli(
            "policies",
            "create",
            "nightly-gate",
            "-a",
            "team:oncall",
            "--timeout",
            "24h",
            "--remind",
            "4h",
            "--remind",
            "12h",
            "--escalate-after",
            "20h",
            "--escalate-to",
            "team:oncall",
            "--json",
            env=env,
        ).stdout
    )
    assert made["reminders"] == [14400, 43200]
    assert made["escalation"]["after_seconds"] == 72000
    shown = run_cli("policies", "show", "nightly-gate", env=env).stdout
    assert "reminders: 4h, 12h" in shown
    assert "escalation: after 20h to team:oncall" in shown
    late = run_cli(
        "policies",
        "create",
        "late",
        "-a",
        "team:oncall",
        "--timeout",
        "1h",
        "--remind",
        "2h",
        env=env,
        check=False,
    )
    assert late.returncode == 1
    assert "reminder 2h is not before the deadline (1h after creation)" in late.stderr
