"""The Prometheus exposition of a snapshot, and the age of the oldest due delivery."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from signoff.domain import metrics


def test_each_gauge_has_help_type_and_value():
    text = metrics.exposition(
        metrics.Snapshot(
            deliveries_due=3,
            deliveries_pending=5,
            deliveries_dead=1,
            delivery_oldest_due_seconds=12.5,
            approvals_pending=40,
        )
    )
    lines = text.splitlines()
    assert text.endswith("\n")
    assert len(lines) == 15
    assert lines[0].startswith("# HELP signoff_deliveries_due Pending deliveries whose")
    assert lines[1:3] == ["# TYPE signoff_deliveries_due gauge", "signoff_deliveries_due 3"]
    assert "signoff_delivery_oldest_due_seconds 12.500" in lines
    assert lines[-1] == "signoff_approvals_pending 40"
    assert all("\n" not in help_text for help_text in metrics.HELP.values())


def test_the_oldest_due_delivery_is_as_old_as_it_is_overdue():
    now = datetime.now(UTC)
    assert metrics.oldest_due_seconds(None, now) == 0
    assert metrics.oldest_due_seconds(now + timedelta(seconds=5), now) == 0  # waiting to retry
    assert metrics.oldest_due_seconds(now - timedelta(seconds=7), now) == 7
