"""The README's story, run as a user would: examples/anomaly_gate.py against a real server.

A nightly pipeline (a service user with its own API key) flags too many anomalous rows and
asks the data owners; a data owner decides with the ``signoff`` CLI; the pipeline applies or
quarantines the batch. Every process is a real subprocess; the tests wait on conditions with a
deadline, never on plain sleeps.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest

import signoff

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "anomaly_gate.py"
CLI = Path(sys.executable).with_name("signoff")
ABOVE = ("--customer", "acme", "--rows", "1000", "--anomaly-rate", "0.064", "--seed", "7")
BELOW = ("--customer", "acme", "--rows", "1000", "--anomaly-rate", "0.01", "--seed", "7")
DEADLINE = 15.0

T = TypeVar("T")


@dataclass
class Story:
    url: str
    admin: signoff.Client
    owner: signoff.Client
    pipeline_key: str
    owner_key: str
    workdir: Path
    started: list[subprocess.Popen[str]] = field(default_factory=list)

    def env(self, api_key: str) -> dict[str, str]:
        return os.environ | {"SIGNOFF_URL": self.url, "SIGNOFF_API_KEY": api_key}

    def gate_args(self, *args: str) -> list[str]:
        return [sys.executable, str(EXAMPLE), "--workdir", str(self.workdir), *args]

    def start_gate(self, *args: str) -> subprocess.Popen[str]:
        """The pipeline, in the background: it blocks until someone decides."""
        gate = subprocess.Popen(
            self.gate_args(*args),
            env=self.env(self.pipeline_key),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.started.append(gate)
        return gate

    def run_gate(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.gate_args(*args),
            env=self.env(self.pipeline_key),
            capture_output=True,
            text=True,
            timeout=DEADLINE,
            check=False,
        )

    def owner_cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The data owner at a terminal: ``signoff approvals ...`` with their own key."""
        return subprocess.run(
            [str(CLI), "approvals", *args],
            env=self.env(self.owner_key),
            capture_output=True,
            text=True,
            timeout=DEADLINE,
            check=False,
        )


@pytest.fixture
def story(server, tmp_path: Path) -> Iterator[Story]:
    """A pipeline service user, and a data owner in team data-owners; each with a key."""
    admin = signoff.Client(server.url, server.admin_key)
    admin.people.create_user("pipeline@example.com", name="Nightly load", kind="service")
    admin.people.create_user("dana@example.com", name="Dana, data owner")
    admin.people.create_team("data-owners")
    admin.people.add_member("data-owners", "dana@example.com")
    pipeline_key = admin.people.create_key(user="pipeline@example.com", name="nightly").key
    owner_key = admin.people.create_key(user="dana@example.com", name="laptop").key
    owner = signoff.Client(server.url, owner_key)
    found = Story(server.url, admin, owner, pipeline_key, owner_key, tmp_path / "gate")
    try:
        yield found
    finally:
        # A failed story may leave a pipeline long-polling: settle what is pending so the
        # server is not held up by open waits when it stops.
        for pending in admin.approvals.iterate(status="pending"):
            admin.approvals.cancel(pending.id, reason="test teardown")
        for gate in found.started:
            if gate.poll() is None:
                gate.kill()
            gate.communicate()
        owner.close()
        admin.close()


def wait_until(condition: Callable[[], T | None], what: str, timeout: float = DEADLINE) -> T:
    deadline = time.monotonic() + timeout
    while (found := condition()) is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting after {timeout}s for {what}")
        time.sleep(0.05)
    return found


def asked_approval(story: Story, gate: subprocess.Popen[str]) -> signoff.Approval:
    """The approval the running pipeline opened, as the data owner sees it."""

    def decidable() -> signoff.Approval | None:
        if gate.poll() is not None:
            out, err = gate.communicate()
            raise AssertionError(f"the pipeline exited {gate.returncode} early:\n{out}\n{err}")
        items = story.owner.approvals.list(decidable=True).items
        assert len(items) <= 1, items
        return items[0] if items else None

    return wait_until(decidable, "the pipeline to ask the data owners")


def finish(gate: subprocess.Popen[str]) -> tuple[int, str]:
    out, err = gate.communicate(timeout=DEADLINE)
    return gate.returncode, out + err


def warehouse(workdir: Path) -> list[tuple[str, int]]:
    """Rows per batch in the pipeline's warehouse."""
    path = workdir / "warehouse.db"
    if not path.exists():
        return []
    with closing(sqlite3.connect(path)) as db:
        query = "SELECT batch_id, count(*) FROM transactions GROUP BY batch_id"
        return [(batch_id, count) for batch_id, count in db.execute(query)]


def test_owner_approves_on_the_cli_and_the_waiting_pipeline_applies_the_batch(story):
    gate = story.start_gate(*ABOVE)
    approval = asked_approval(story, gate)
    assert gate.poll() is None, "the pipeline should be waiting for the decision"
    assert approval.context["customer"] == "acme"
    assert approval.context["rows"] == 1000
    assert approval.context["flagged"] >= 64
    assert approval.context["ratio"] > approval.context["threshold"] == 0.06
    assert len(approval.context["sample"]) == 5
    assert [a.name for a in approval.approvers] == ["data-owners"]
    assert approval.on_timeout == "reject"
    batch_id = approval.context["batch_id"]
    assert batch_id in approval.title
    assert f"**{approval.context['ratio']:.1%}**" in approval.body

    decided = story.owner_cli("approve", approval.id, "-m", "ok")
    assert decided.returncode == 0, decided.stderr
    assert "approved" in decided.stdout

    code, output = finish(gate)
    assert code == 0, output
    assert f"approval {approval.id} approved by dana@example.com: ok" in output
    assert f"applied: 1000 rows of {batch_id}" in output
    assert warehouse(story.workdir) == [(batch_id, 1000)]
    assert not list((story.workdir / "incoming").iterdir())
    assert not (story.workdir / "quarantine").exists()
    settled = story.admin.approvals.get(approval.id)
    assert settled.status == "approved"
    assert [(d.user, d.channel) for d in settled.decisions] == [("dana@example.com", "cli")]


def test_owner_rejects_and_the_pipeline_quarantines_the_batch(story):
    gate = story.start_gate(*ABOVE)
    approval = asked_approval(story, gate)
    batch_id = approval.context["batch_id"]

    decided = story.owner_cli("reject", approval.id, "-m", "customer is migrating")
    assert decided.returncode == 0, decided.stderr

    code, output = finish(gate)
    assert code == 3, output
    assert f"approval {approval.id} rejected by dana@example.com" in output
    assert f"discarded: {batch_id}" in output
    assert warehouse(story.workdir) == []
    quarantined = story.workdir / "quarantine" / f"{batch_id}.csv"
    assert len(quarantined.read_text().splitlines()) == 1 + 1000
    outcome = json.loads(quarantined.with_suffix(".outcome.json").read_text())
    assert outcome["status"] == "rejected"
    assert outcome["comment"] == "customer is migrating"
    assert not (story.workdir / "incoming" / f"{batch_id}.csv").exists()


def test_batch_below_the_threshold_is_applied_without_asking_anyone(story):
    done = story.run_gate(*BELOW)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "loaded into the warehouse without approval" in done.stdout
    [(batch_id, rows)] = warehouse(story.workdir)
    assert rows == 1000
    assert done.stdout.startswith(f"{batch_id}: ")
    assert story.admin.approvals.list().items == []


def test_no_wait_asks_and_exits_and_a_rerun_resumes_with_the_same_approval(story):
    first = story.run_gate(*ABOVE, "--no-wait")
    assert first.returncode == 0, first.stdout + first.stderr
    [approval] = story.owner.approvals.list(decidable=True).items
    assert approval.url in first.stdout
    assert warehouse(story.workdir) == []

    decided = story.owner_cli("approve", approval.id, "-m", "known promo, fine")
    assert decided.returncode == 0, decided.stderr

    rerun = story.run_gate(*ABOVE, "--no-wait")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert f"approval {approval.id} approved" in rerun.stdout
    assert warehouse(story.workdir) == [(approval.context["batch_id"], 1000)]
    assert [a.id for a in story.admin.approvals.list().items] == [approval.id]
