"""Metrics for Prometheus: how much work is waiting, read from the database at each scrape.

Everything here is a gauge of the shared database, not of one process, so every server
reports the same values: scrape one, or aggregate with ``max``. The text is Prometheus's
exposition format 0.0.4, which a few lines write; no client library is needed for gauges.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "signoff_"


@dataclass(frozen=True)
class Snapshot:
    """Each field is one gauge, named ``signoff_<field>`` and described in ``HELP``."""

    deliveries_due: int
    deliveries_pending: int
    deliveries_dead: int
    delivery_oldest_due_seconds: float
    approvals_pending: int


HELP = {
    "deliveries_due": "Pending deliveries whose next attempt time has passed and that no "
    "worker has in hand: the backlog. Above zero for long means no worker runs, or too few.",
    "deliveries_pending": "Deliveries not yet delivered nor dead, including those waiting "
    "to retry and those being sent.",
    "deliveries_dead": "Deliveries that gave up at the maximum age; redrive them once their "
    "receiver works.",
    "delivery_oldest_due_seconds": "How long the longest-waiting due delivery has been due "
    "(0 when none is due).",
    "approvals_pending": "Approvals waiting for a decision.",
}


def oldest_due_seconds(earliest_pending_at: datetime | None, now: datetime) -> float:
    """Seconds since the earliest pending delivery fell due; 0 when it is not due yet."""
    if earliest_pending_at is None or earliest_pending_at > now:
        return 0.0
    return (now - earliest_pending_at).total_seconds()


def exposition(snapshot: Snapshot) -> str:
    lines = []
    for field in fields(snapshot):
        name = PREFIX + field.name
        lines += [
            f"# HELP {name} {HELP[field.name]}",
            f"# TYPE {name} gauge",
            f"{name} {_number(getattr(snapshot, field.name))}",
        ]
    return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:.3f}"
