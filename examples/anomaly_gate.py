"""A nightly pipeline that asks a person before loading a suspicious batch.

The story: tonight's batch for a customer has more anomalous rows than the threshold allows
(6.4% flagged, 6% allowed). Instead of someone editing the production database by hand, the
pipeline asks the data owners through signoff, waits, and then applies or discards the batch.

1. Generate a synthetic batch of transactions (``<workdir>/incoming/<batch>.csv``).
2. Flag anomalies with a robust z-score: |0.6745 * (amount - median) / MAD| > 3.5.
3. At or below the threshold, load the batch into the warehouse (``<workdir>/warehouse.db``,
   SQLite) without asking anyone.
4. Above it, open an approval for ``--approver`` (default ``team:data-owners``) and wait.
   Approved: load the batch. Rejected, expired or canceled: move it to ``<workdir>/quarantine``.

Run it against a server (``scripts/serve``) with a key of the pipeline's service user::

    export SIGNOFF_URL=http://127.0.0.1:8000 SIGNOFF_API_KEY=sok_...
    python examples/anomaly_gate.py --customer acme --anomaly-rate 0.064

``--no-wait`` prints the approval and exits; rerun the same command later to resume. The batch
id is a hash of the batch's content and the approval's Idempotency-Key is derived from it, so
the rerun finds the same approval instead of opening a second one.

Exit codes: 0 applied (or still pending with ``--no-wait``), 3 discarded, 1 signoff refused
or could not be reached.
Needs only the signoff SDK and the standard library.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import random
import shutil
import sqlite3
import statistics
import sys
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import signoff

FIELDS = ("row_id", "customer", "account", "amount", "booked_at")
MAD_TO_SIGMA = 0.6745  # the MAD of a normal distribution is 0.6745 standard deviations
Z_LIMIT = 3.5
SAMPLE_SIZE = 5
EXIT_OK, EXIT_ERROR, EXIT_DISCARDED = 0, 1, 3

Row = dict[str, Any]


@dataclass(frozen=True)
class Batch:
    batch_id: str
    customer: str
    path: Path
    rows: list[Row]


@dataclass(frozen=True)
class Findings:
    flagged: list[Row]  # each row with its robust z-score under "z"
    ratio: float


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    url = os.environ.get("SIGNOFF_URL", "http://127.0.0.1:8000")
    parser.add_argument("--url", default=url, help="signoff server (env SIGNOFF_URL)")
    parser.add_argument(
        "--api-key",
        default=os.environ.get("SIGNOFF_API_KEY"),
        help="the pipeline's API key (env SIGNOFF_API_KEY)",
    )
    parser.add_argument("--approver", action="append", help="user email or team:<name>; repeatable")
    parser.add_argument("--customer", default="acme")
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--anomaly-rate", type=float, default=0.064, help="share of bad rows")
    parser.add_argument("--threshold", type=float, default=0.06, help="flagged share allowed")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--batch-id", help="default: a hash of the batch's content")
    parser.add_argument("--workdir", type=Path, default=Path("anomaly-gate"))
    parser.add_argument("--timeout", default="24h", help="time to decide, e.g. 30m, 24h, 7d")
    parser.add_argument("--no-wait", action="store_true", help="ask, print the approval, exit")
    args = parser.parse_args(argv)
    args.approver = args.approver or ["team:data-owners"]
    return args


def generate_rows(customer: str, count: int, anomaly_rate: float, seed: int) -> list[Row]:
    """Normal-looking amounts around 100, with ``anomaly_rate`` of them blown up 8-20x."""
    rng = random.Random(seed)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    bad = set(rng.sample(range(count), round(count * anomaly_rate)))
    rows = []
    for i in range(count):
        amount = max(1.0, rng.gauss(100, 15))
        if i in bad:
            amount *= rng.uniform(8, 20)
        booked = start + timedelta(seconds=rng.randrange(86_400))
        account = f"ACC-{rng.randrange(10_000):04d}"
        rows.append(
            {
                "row_id": i,
                "customer": customer,
                "account": account,
                "amount": round(amount, 2),
                "booked_at": booked.isoformat(),
            }
        )
    return rows


def write_batch(workdir: Path, customer: str, rows: list[Row], batch_id: str | None) -> Batch:
    """Write the batch as CSV under ``incoming/``; its id defaults to a content hash."""
    content = json.dumps(rows, sort_keys=True).encode()
    batch_id = batch_id or hashlib.sha256(content).hexdigest()[:12]
    path = workdir / "incoming" / f"{batch_id}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return Batch(batch_id, customer, path, rows)


def flag_anomalies(rows: list[Row]) -> Findings:
    """Robust z-scores from the median and the median absolute deviation (MAD)."""
    if not rows:
        return Findings([], 0.0)
    amounts = [float(row["amount"]) for row in rows]
    median = statistics.median(amounts)
    mad = statistics.median(abs(a - median) for a in amounts) or 1e-9
    flagged = []
    for row, amount in zip(rows, amounts, strict=True):
        z = MAD_TO_SIGMA * (amount - median) / mad
        if abs(z) > Z_LIMIT:
            flagged.append(row | {"z": round(z, 1)})
    return Findings(flagged, len(flagged) / len(rows))


def describe(batch: Batch, findings: Findings, threshold: float) -> tuple[str, str, Row]:
    """The approval's title, Markdown body and context."""
    sample = sorted(findings.flagged, key=lambda r: -abs(r["z"]))[:SAMPLE_SIZE]
    title = (
        f"Apply batch {batch.batch_id} for {batch.customer}? "
        f"{findings.ratio:.1%} of rows flagged (threshold {threshold:.1%})"
    )[:200]
    lines = [
        f"The nightly load for **{batch.customer}** flagged **{len(findings.flagged)}** of "
        f"{len(batch.rows)} rows (**{findings.ratio:.1%}**), above the {threshold:.1%} threshold.",
        "",
        "Approve to load the batch into the warehouse as it is; reject to quarantine it.",
        "",
        "| row | account | amount | robust z |",
        "|---:|---|---:|---:|",
        *(f"| {r['row_id']} | {r['account']} | {r['amount']:.2f} | {r['z']} |" for r in sample),
    ]
    context = {
        "customer": batch.customer,
        "batch_id": batch.batch_id,
        "rows": len(batch.rows),
        "flagged": len(findings.flagged),
        "ratio": round(findings.ratio, 4),
        "threshold": threshold,
        "sample": sample,
    }
    return title, "\n".join(lines), context


def apply_batch(workdir: Path, batch: Batch) -> int:
    """Load the batch into the warehouse once; returns the rows inserted (0 if loaded before)."""
    with closing(sqlite3.connect(workdir / "warehouse.db")) as db, db:
        inserted = _insert_once(db, batch)
    batch.path.unlink(missing_ok=True)
    return inserted


def _insert_once(db: sqlite3.Connection, batch: Batch) -> int:
    db.execute("CREATE TABLE IF NOT EXISTS batches (batch_id TEXT PRIMARY KEY, loaded_at TEXT)")
    db.execute(
        "CREATE TABLE IF NOT EXISTS transactions (batch_id TEXT, row_id INTEGER,"
        " customer TEXT, account TEXT, amount REAL, booked_at TEXT)"
    )
    if db.execute("SELECT 1 FROM batches WHERE batch_id = ?", (batch.batch_id,)).fetchone():
        return 0
    db.execute("INSERT INTO batches VALUES (?, ?)", (batch.batch_id, datetime.now(UTC).isoformat()))
    db.executemany(
        "INSERT INTO transactions VALUES (?, ?, ?, ?, ?, ?)",
        [(batch.batch_id, *(row[f] for f in FIELDS)) for row in batch.rows],
    )
    return len(batch.rows)


def report_applied(batch: Batch, inserted: int, how: str) -> None:
    if inserted:
        print(f"applied: {inserted} rows of {batch.batch_id} loaded into the warehouse {how}")
    else:
        print(f"applied: {batch.batch_id} was already in the warehouse")


def discard_batch(workdir: Path, batch: Batch, outcome: dict[str, Any] | None) -> Path:
    """Move the batch to ``quarantine/``, with the approval's outcome next to it."""
    folder = workdir / "quarantine"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / batch.path.name
    shutil.move(batch.path, target)
    target.with_suffix(".outcome.json").write_text(json.dumps(outcome or {}, indent=2))
    return target


def settle(args: argparse.Namespace, batch: Batch, approval: signoff.Approval) -> int:
    """Apply the batch if approved, quarantine it otherwise."""
    outcome = approval.outcome or {}
    how = (
        f"by {outcome['decided_by']}" if outcome.get("decided_by") else f"({outcome.get('reason')})"
    )
    note = f": {outcome['comment']}" if outcome.get("comment") else ""
    print(f"approval {approval.id} {approval.status} {how}{note}")
    if approval.status == "approved":
        report_applied(batch, apply_batch(args.workdir, batch), "as approved")
        return EXIT_OK
    target = discard_batch(args.workdir, batch, approval.outcome)
    print(f"discarded: {batch.batch_id} moved to {target}")
    return EXIT_DISCARDED


def ask(args: argparse.Namespace, batch: Batch, findings: Findings) -> int:
    """Open (or find again) the approval, wait for it unless --no-wait, then settle."""
    title, body, context = describe(batch, findings, args.threshold)
    with signoff.Client(args.url, args.api_key) as client:
        approval = client.approvals.create(
            title=title,
            body=body,
            context=context,
            labels=["anomaly-gate"],
            approvers=args.approver,
            timeout=args.timeout,
            on_timeout="reject",
            idempotency_key=f"anomaly-gate/{batch.customer}/{batch.batch_id}",
        )
        print(f"approval {approval.id} {approval.status}: {approval.url}", flush=True)
        if approval.is_pending and args.no_wait:
            print("not waiting: rerun the same command to resume once it is decided")
            return EXIT_OK
        if approval.is_pending:
            print(f"waiting for {', '.join(args.approver)} to decide...", flush=True)
            approval = approval.wait()
    return settle(args, batch, approval)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rows = generate_rows(args.customer, args.rows, args.anomaly_rate, args.seed)
    batch = write_batch(args.workdir, args.customer, rows, args.batch_id)
    findings = flag_anomalies(batch.rows)
    print(
        f"{batch.batch_id}: {len(findings.flagged)} of {len(rows)} rows flagged "
        f"({findings.ratio:.1%}; threshold {args.threshold:.1%})",
        flush=True,
    )
    if findings.ratio <= args.threshold:
        report_applied(batch, apply_batch(args.workdir, batch), "without approval")
        return EXIT_OK
    try:
        return ask(args, batch, findings)
    except signoff.errors.IdempotencyConflict as exc:
        print(
            f"error: {exc}: rerun with the first run's options, or a new --batch-id",
            file=sys.stderr,
        )
        return EXIT_ERROR
    except signoff.SignoffError as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
