"""GET /metrics: Prometheus gauges of the waiting work, open only to the metrics networks."""

from __future__ import annotations

import time

import httpx
import pytest

import signoff
from tests.conftest import RunningServer

# No worker: whatever falls due stays due, so the backlog can be read exactly.
NO_WORKER_LOOPBACK = {"run_worker": False, "metrics_allowed_networks": "127.0.0.0/8,::1/128"}


def scrape(server: RunningServer) -> dict[str, float]:
    answer = httpx.get(f"{server.url}/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples: dict[str, float] = {}
    described: set[str] = set()
    for line in answer.text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind == "gauge"
            described.add(name)
        elif not line.startswith("#"):
            name, value = line.split(" ")
            samples[name] = float(value)
    assert described == set(samples)
    return samples


@pytest.mark.parametrize("settings_overrides", [NO_WORKER_LOOPBACK], indirect=True)
def test_metrics_count_the_waiting_work(server: RunningServer):
    assert scrape(server) == {
        "signoff_deliveries_due": 0,
        "signoff_deliveries_pending": 0,
        "signoff_deliveries_dead": 0,
        "signoff_delivery_oldest_due_seconds": 0,
        "signoff_approvals_pending": 0,
    }
    admin = signoff.Client(server.url, server.admin_key)
    admin.people.create_user("alice@example.com")
    alice = signoff.Client(server.url, admin.people.create_key(user="alice@example.com").key)
    admin.approvals.create(title="open", approvers=["alice@example.com"])
    settled = admin.approvals.create(
        title="settled", approvers=["alice@example.com"], callback_url="http://127.0.0.1:9/hook"
    )
    before = time.monotonic()
    alice.approvals.approve(settled.id)
    found = scrape(server)
    overdue_at_most = time.monotonic() - before
    assert found["signoff_approvals_pending"] == 1
    assert found["signoff_deliveries_pending"] == 1
    assert found["signoff_deliveries_due"] == 1
    assert found["signoff_deliveries_dead"] == 0
    assert 0 < found["signoff_delivery_oldest_due_seconds"] <= overdue_at_most


def test_metrics_are_closed_to_everyone_by_default_even_admins(server: RunningServer):
    answer = httpx.get(
        f"{server.url}/metrics", headers={"authorization": f"Bearer {server.admin_key}"}
    )
    assert (answer.status_code, answer.json()["code"]) == (403, "address_not_allowed")
    assert "SIGNOFF_METRICS_ALLOWED_NETWORKS" in answer.json()["detail"]


@pytest.mark.parametrize(
    "settings_overrides", [{"metrics_allowed_networks": "10.0.0.0/8"}], indirect=True
)
def test_metrics_are_closed_outside_their_networks(server: RunningServer):
    assert httpx.get(f"{server.url}/metrics").status_code == 403
