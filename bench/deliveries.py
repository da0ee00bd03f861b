"""Deliveries benchmark: how fast does signoff hand events to a webhook receiver?

One command. For SQLite, and for PostgreSQL when ``--postgres URL`` or
SIGNOFF_BENCH_POSTGRES_URL names a server (a database is created for the run and dropped
after), each with 1 and 2 workers:

  drain     N deliveries of new events are written into the outbox in one transaction while
            the workers wait; events delivered per second, from the first arrival at the
            receiver to the last (so process start-up and wake-up are not counted), median of
            --rounds.
  live      Approvals with a callback_url are created and approved through the API at a fixed
            rate (open loop); event -> delivery latency p50/p99, from the approval.settled
            event's timestamp to its arrival at the receiver.
  baseline  The same receiver hit directly by an httpx loop with the dispatcher's concurrency,
            sending envelopes signed as signoff signs them: what this machine, httpx and the
            receiver do without a database. Drain rates are also given as a ratio of it.

Workers: on SQLite, 1 worker is the server with its in-process worker, and 2 workers add a
``signoff worker`` process on the same file, which hears no notifications and looks for work
every SIGNOFF_WORKER_MAX_SLEEP_SECONDS (0.2 s here). On PostgreSQL, a server without a worker
(``--no-worker``) and 1 or 2 ``signoff worker`` processes, woken by LISTEN/NOTIFY.

The receiver is a process of its own (uvicorn); it checks every signature with
``signoff.webhooks.verify`` and notes when each webhook-id arrived. The benchmark reuses
``gates.py``'s process, database and HTTP helpers. A JSON copy of the results goes to
bench/results/.

    .venv/bin/python bench/deliveries.py [--quick] [--postgres URL] [--events N] [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gates
import httpx

CONCURRENCY = 32  # the dispatcher's default SIGNOFF_DELIVERY_CONCURRENCY; the baseline's too
WORKER_POLL_SECONDS = "0.2"
SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
WORKERS = (1, 2)


@dataclass(frozen=True)
class Config:
    events: int
    rounds: int
    live_rate: float
    live_seconds: float
    postgres_url: str | None
    quick: bool


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run, small counts")
    parser.add_argument("--events", type=int, help="deliveries per drain (5,000; 1,000 quick)")
    parser.add_argument("--rounds", type=int, help="drains per configuration (3; 1 quick)")
    parser.add_argument("--live-rate", type=float, help="approvals settled per second (25)")
    parser.add_argument("--live-seconds", type=float, help="length of the live phase (20; 5)")
    parser.add_argument("--postgres", help="PostgreSQL admin URL; else $SIGNOFF_BENCH_POSTGRES_URL")
    parser.add_argument("--serve-receiver", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def make_config(args: argparse.Namespace) -> Config:
    quick = args.quick
    return Config(
        events=args.events or (1_000 if quick else 5_000),
        rounds=args.rounds or (1 if quick else 3),
        live_rate=args.live_rate or 25.0,
        live_seconds=args.live_seconds or (5.0 if quick else 20.0),
        postgres_url=args.postgres or os.environ.get("SIGNOFF_BENCH_POSTGRES_URL"),
        quick=quick,
    )


# --- the receiver (run as: deliveries.py --serve-receiver --port P) --------------------------


class ReceiverApp:
    """Verifies each webhook and notes the first arrival of each webhook-id (wall clock, to
    compare with the event's own timestamp, written by another process)."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.reset()

    def reset(self) -> None:
        self.arrivals: dict[str, tuple[float, float]] = {}  # id -> (arrived, event occurred)
        self.duplicates = 0
        self.rejected = 0

    async def __call__(self, scope: gates.Metrics, receive: Any, send: Any) -> None:
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message.get("body", b""), message.get("more_body", False)
        arrived = time.time()
        status, answer = self.route(scope["method"], scope["path"], scope, body, arrived)
        headers = [(b"content-type", b"application/json")] if answer else []
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    def route(
        self, method: str, path: str, scope: gates.Metrics, body: bytes, arrived: float
    ) -> tuple[int, bytes]:
        if method == "POST" and path == "/hook":
            return self.accept(scope, body, arrived), b""
        if path == "/stats":
            stats = {"unique": len(self.arrivals), "duplicates": self.duplicates}
            return 200, json.dumps(stats | {"rejected": self.rejected}).encode()
        if path == "/arrivals":
            return 200, json.dumps(self.arrivals).encode()
        if method == "POST" and path == "/reset":
            self.reset()
            return 204, b""
        return (200, b"{}") if path == "/healthz" else (404, b"")

    def accept(self, scope: gates.Metrics, body: bytes, arrived: float) -> int:
        from signoff import errors, webhooks

        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            event = webhooks.verify(body, headers, self.secret)
        except errors.InvalidSignature:
            self.rejected += 1
            return 400
        webhook_id = headers["webhook-id"]
        if webhook_id in self.arrivals:
            self.duplicates += 1
        else:
            occurred = datetime.fromisoformat(event["timestamp"]).timestamp()
            self.arrivals[webhook_id] = (arrived, occurred)
        return 204


def serve_receiver(port: int) -> None:
    import uvicorn

    secret = os.environ["BENCH_WEBHOOK_SECRET"]
    options: dict[str, Any] = {"interface": "asgi3", "lifespan": "off", "log_level": "warning"}
    uvicorn.run(ReceiverApp(secret), host=gates.HOST, port=port, access_log=False, **options)


@dataclass
class Receiver:
    process: gates.Process
    http: httpx.AsyncClient

    @property
    def url(self) -> str:
        return f"{self.process.url}/hook"

    async def reset(self) -> None:
        (await self.http.post("/reset")).raise_for_status()

    async def stats(self) -> gates.Metrics:
        answer = await self.http.get("/stats")
        answer.raise_for_status()
        stats: gates.Metrics = answer.json()
        return stats

    async def arrivals(self) -> dict[str, tuple[float, float]]:
        answer = await self.http.get("/arrivals")
        answer.raise_for_status()
        return {k: (v[0], v[1]) for k, v in answer.json().items()}

    async def wait_for(self, count: int, limit: float) -> gates.Metrics:
        deadline = time.monotonic() + limit
        while (stats := await self.stats())["unique"] < count:
            if time.monotonic() > deadline:
                raise gates.BenchError(
                    f"the receiver got {stats['unique']} of {count} in {limit:.0f}s"
                )
            await asyncio.sleep(0.1)
        if stats["rejected"]:
            raise gates.BenchError(f"{stats['rejected']} webhooks failed signature verification")
        return stats


@contextlib.asynccontextmanager
async def receiving(workdir: Path) -> AsyncIterator[Receiver]:
    port = gates.free_port()
    argv = [sys.executable, __file__, "--serve-receiver", "--port", str(port)]
    env = dict(os.environ) | {"BENCH_WEBHOOK_SECRET": SECRET}
    async with (
        gates.spawned("receiver", argv, env, workdir) as process,
        httpx.AsyncClient(base_url=process.url, timeout=30) as http,
    ):
        yield Receiver(process, http)


# --- signoff: a server and its workers on one database ---------------------------------------


@dataclass
class Deployment:
    backend: str
    database_url: str
    server: gates.Process
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def pids(self) -> dict[str, int]:
        found = {"server": self.server.pid}
        return found | {f"worker{n}": w.pid for n, w in enumerate(self.workers, 1)}


def env_for(database_url: str, port: int) -> dict[str, str]:
    return gates.signoff_env(database_url, port) | {
        "SIGNOFF_WEBHOOK_SECRET": SECRET,
        "SIGNOFF_WORKER_MAX_SLEEP_SECONDS": WORKER_POLL_SECONDS,
    }


@contextlib.asynccontextmanager
async def deployed(
    backend: str, database_url: str, workers: int, workdir: Path
) -> AsyncIterator[Deployment]:
    """SQLite: the server runs the first worker itself. PostgreSQL: every worker is a
    ``signoff worker`` process beside a server without one."""
    in_process = backend == "sqlite"
    port = gates.free_port()
    argv = [str(gates.BIN / "signoff"), "server", "run", "--host", gates.HOST, "--port", str(port)]
    argv += [] if in_process else ["--no-worker"]
    env = env_for(database_url, port)
    async with gates.spawned(f"signoff-{backend}-{workers}w", argv, env, workdir) as server:
        deployment = Deployment(backend, database_url, server)
        try:
            for n in range(workers - 1 if in_process else workers):
                log_path = workdir / f"worker-{backend}-{workers}w-{n + 1}.log"
                deployment.workers.append(start_worker(env, workdir, log_path))
            await workers_ready(deployment, workdir)
            yield deployment
        finally:
            for worker in deployment.workers:
                worker.terminate()
            for worker in deployment.workers:
                await asyncio.to_thread(worker.wait, 15)


def start_worker(env: dict[str, str], workdir: Path, log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as out:
        argv = [str(gates.BIN / "signoff"), "worker"]
        return subprocess.Popen(argv, env=env, cwd=workdir, stdout=out, stderr=out)


async def workers_ready(deployment: Deployment, workdir: Path, limit: float = 60) -> None:
    """Every worker process has its database open: the SQLite file among its open files, or
    its LISTEN connection to PostgreSQL."""
    deadline = time.monotonic() + limit
    while not await asyncio.to_thread(_all_ready, deployment):
        if time.monotonic() > deadline:
            raise gates.BenchError("the workers did not start; see their logs in " + str(workdir))
        if any(w.poll() is not None for w in deployment.workers):
            raise gates.BenchError("a worker exited; see its gates.log in " + str(workdir))
        await asyncio.sleep(0.1)


def _all_ready(deployment: Deployment) -> bool:
    if deployment.backend == "sqlite":
        path = deployment.database_url.removeprefix("sqlite:///")
        return all(_has_open(w.pid, path) for w in deployment.workers)
    from sqlalchemy import text

    from signoff.store.engine import Database

    db = Database(deployment.database_url, pool_size=1)
    try:
        with db.read() as session:
            query = text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND query = 'LISTEN signoff'"
            )
            listening = int(session.scalar(query) or 0)
    finally:
        db.dispose()
    return listening >= 1 + len(deployment.workers)  # the server listens too


def _has_open(pid: int, path: str) -> bool:
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                if os.readlink(fd) == path:
                    return True
    return False


def write_backlog(database_url: str, count: int, target: str) -> None:
    """``count`` new events, each with a delivery to ``target``, due now: one transaction,
    one notification, as a burst of settlements would leave them."""
    from sqlalchemy import insert

    from signoff.domain import ids
    from signoff.services import journal
    from signoff.store.engine import Database
    from signoff.store.tables import DeliveryRow, EventRow, table

    now = datetime.now(UTC)
    events, deliveries = [], []
    for n in range(count):
        event_id = ids.new_sortable_id("evt")
        data = {"id": f"ap_bench{n:07d}", "status": "approved"}
        events.append(
            {"id": event_id, "type": "approval.settled", "subject": data["id"]}
            | {"actor": "system:bench", "data": data, "occurred_at": now}
        )
        deliveries.append(
            {"id": ids.new_sortable_id("msg"), "event_id": event_id, "target_kind": "callback"}
            | {"target": target, "purpose": "callback", "status": "pending", "attempts": 0}
            | {"next_attempt_at": now, "created_at": now}
        )
    db = Database(database_url, pool_size=1)
    try:
        with db.write() as session:
            session.execute(insert(table(EventRow)), events)
            session.execute(insert(table(DeliveryRow)), deliveries)
            db.notify(session, journal.DELIVERY)
    finally:
        db.dispose()


# --- the measurements ------------------------------------------------------------------------


class Cpu:
    """CPU used since creation by each process, by PostgreSQL, in percent of one core."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.started = time.monotonic()
        self.before = {name: gates.cpu_seconds(pid) for name, pid in pids.items()}
        self.postgres = gates.postgres_cpu_seconds()

    def percent(self) -> gates.Metrics:
        elapsed = time.monotonic() - self.started
        found = {
            f"{name}_cpu_pct": 100 * (gates.cpu_seconds(pid) - self.before[name]) / elapsed
            for name, pid in self.pids.items()
        }
        postgres = 100 * (gates.postgres_cpu_seconds() - self.postgres) / elapsed
        return found | {"postgres_cpu_pct": postgres}


def rate_between_arrivals(arrivals: dict[str, tuple[float, float]]) -> float:
    """Arrivals per second, from the first to the last."""
    times = sorted(arrived for arrived, _ in arrivals.values())
    return (len(times) - 1) / max(times[-1] - times[0], 1e-9)


async def drain(deployment: Deployment, receiver: Receiver, config: Config) -> gates.Metrics:
    await receiver.reset()
    pids = deployment.pids | {"receiver": receiver.process.pid}
    cpu = Cpu(pids)
    written_at = time.time()
    target = receiver.url
    await asyncio.to_thread(write_backlog, deployment.database_url, config.events, target)
    stats = await receiver.wait_for(config.events, limit=600)
    arrivals = await receiver.arrivals()
    last = max(arrived for arrived, _ in arrivals.values())
    return {
        "events": config.events,
        "rate": rate_between_arrivals(arrivals),
        "seconds_to_last": last - written_at,
        "duplicates": stats["duplicates"],
    } | cpu.percent()


async def live(deployment: Deployment, receiver: Receiver, config: Config) -> gates.Metrics:
    """Approvals settled at ``live_rate`` per second through the API; each settlement's event
    -> arrival latency."""
    await receiver.reset()
    async with gates.http_client(deployment.server.url, "raw") as http:
        api = gates.Signoff(http, await gates.setup_actors(http))
        cpu = Cpu(deployment.pids | {"receiver": receiver.process.pid})
        settled: list[str] = []
        errors = 0

        async def settle() -> None:
            nonlocal errors
            try:
                approval_id = await api.create(callback_url=receiver.url)
                await api.approve(approval_id)
            except (*gates.TRANSPORT_ERRORS, gates.OpFailed):
                errors += 1
            else:
                settled.append(approval_id)

        tasks, started = [], time.monotonic()
        for n in range(int(config.live_rate * config.live_seconds)):
            await asyncio.sleep(max(0.0, started + n / config.live_rate - time.monotonic()))
            tasks.append(asyncio.create_task(settle()))
        await asyncio.gather(*tasks)
        offered_seconds = time.monotonic() - started
        await receiver.wait_for(len(settled), limit=120)
        found = cpu.percent()
    latencies = [arrived - occurred for arrived, occurred in (await receiver.arrivals()).values()]
    return {
        "settled": len(settled),
        "errors": errors,
        "rate": len(settled) / offered_seconds,
        "p50_ms": gates.percentile_ms(latencies, 0.50),
        "p99_ms": gates.percentile_ms(latencies, 0.99),
    } | found


async def baseline(receiver: Receiver, config: Config) -> gates.Metrics:
    """Signed envelopes POSTed straight to the receiver by ``CONCURRENCY`` httpx tasks."""
    from signoff.domain.deliveries import Delivery, TargetKind
    from signoff.domain.events import Event
    from signoff.worker.senders import webhook

    await receiver.reset()
    cpu = Cpu({"receiver": receiver.process.pid, "sender": os.getpid()})
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(config.events):
        queue.put_nowait(n)
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)

    async def sender(http: httpx.AsyncClient) -> None:
        while not queue.empty():
            n = queue.get_nowait()
            event = Event(f"evt_{n}", "approval.settled", f"ap_{n}", "system:bench", {}, now())
            delivery = Delivery(f"msg_{uuid.uuid4().hex}", event, TargetKind.CALLBACK, "", 0, now())
            body, headers = webhook.signed_request(delivery, (SECRET,))
            (await http.post(receiver.url, content=body, headers=headers)).raise_for_status()

    async with httpx.AsyncClient(limits=limits, timeout=30) as http:
        await asyncio.gather(*(sender(http) for _ in range(CONCURRENCY)))
    await receiver.wait_for(config.events, limit=60)
    arrivals = await receiver.arrivals()
    return {"events": config.events, "rate": rate_between_arrivals(arrivals)} | cpu.percent()


def now() -> datetime:
    return datetime.now(UTC)


# --- the run ---------------------------------------------------------------------------------


@dataclass
class Report:
    machine: gates.Metrics
    config: Config
    rows: list[gates.Metrics] = field(default_factory=list)


def backends(config: Config, machine: gates.Metrics) -> list[tuple[str, Any]]:
    found = [("sqlite", gates.fresh_sqlite)]
    if config.postgres_url:
        try:
            machine["postgresql"] = gates.postgres_version(config.postgres_url)
        except Exception as exc:  # any failure to connect means: measure without it
            gates.log(f"PostgreSQL at {config.postgres_url} is unavailable ({exc}); skipping it")
        else:
            found.append(("postgresql", _fresh_postgres(config.postgres_url)))
    return found


def _fresh_postgres(admin_url: str) -> Any:
    def fresh(workdir: Path) -> contextlib.AbstractContextManager[str]:
        return gates.fresh_postgres(admin_url, workdir)

    return fresh


async def bench(config: Config) -> Report:
    report = Report(machine=gates.machine_info(), config=config)
    report.machine["background_busy_pct"] = busy = await gates.background_busy()
    report.machine["load_average_1m"] = os.getloadavg()[0]
    if busy > 10:
        gates.log(f"warning: the machine is already {busy:.0f}% busy; the results will be skewed")
    with tempfile.TemporaryDirectory(prefix="signoff-bench-") as tmp:
        workdir = Path(tmp)
        async with receiving(workdir) as receiver:
            gates.log(f"[baseline] httpx, {CONCURRENCY} concurrent, straight to the receiver")
            rounds = [await baseline(receiver, config) for _ in range(config.rounds)]
            report.rows.append(
                {"backend": "-", "workers": 0, "scenario": "baseline"} | median(rounds)
            )
            gates.log(f"  {describe(report.rows[-1])}")
            for backend, fresh in backends(config, report.machine):
                for workers in WORKERS:
                    gates.log(f"[{backend}] {workers} worker{'s' if workers > 1 else ''}")
                    with fresh(workdir) as url:
                        async with deployed(backend, url, workers, workdir) as deployment:
                            found = await bench_deployment(config, deployment, receiver)
                    row = {"backend": backend, "workers": workers}
                    report.rows += [row | {"scenario": name} | m for name, m in found.items()]
    return report


async def bench_deployment(
    config: Config, deployment: Deployment, receiver: Receiver
) -> dict[str, gates.Metrics]:
    """Drain rounds, then the live phase, on one deployment."""
    rounds = []
    for number in range(1, config.rounds + 1):
        rounds.append(await drain(deployment, receiver, config))
        gates.log(f"  drain {number}: {describe(rounds[-1])}")
    found = await live(deployment, receiver, config)
    errors = f", {found['errors']} errors" if found["errors"] else ""
    gates.log(
        f"  live: {found['rate']:.1f}/s settled, event -> delivery p50 "
        f"{gates.fmt(found['p50_ms'])} ms, p99 {gates.fmt(found['p99_ms'])} ms{errors}"
    )
    return {"drain": median(rounds), "live": found}


def median(rounds: list[gates.Metrics]) -> gates.Metrics:
    merged = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    return merged | {"rounds": len(rounds)}


def describe(m: gates.Metrics) -> str:
    cpu = ", ".join(
        f"{k.removesuffix('_cpu_pct')} {v:.0f}%" for k, v in m.items() if k.endswith("_cpu_pct")
    )
    duplicates = f", {m['duplicates']} duplicates" if m.get("duplicates") else ""
    return f"{m['rate']:,.0f} events/s{duplicates}; CPU: {cpu}"


def print_report(report: Report) -> None:
    base = next(r["rate"] for r in report.rows if r["scenario"] == "baseline")
    print(f"\n{report.machine['date']}, {report.machine['nproc']} cores, {report.machine['cpu']}")
    print(f"baseline (httpx -> receiver, {CONCURRENCY} concurrent): {base:,.0f} events/s\n")
    print(
        f"{'backend':<11}{'workers':>8}{'drain/s':>10}{'/ baseline':>11}"
        f"{'live/s':>8}{'p50 ms':>9}{'p99 ms':>9}"
    )
    for backend in dict.fromkeys(r["backend"] for r in report.rows if r["backend"] != "-"):
        for workers in WORKERS:
            rows = {
                r["scenario"]: r
                for r in report.rows
                if r["backend"] == backend and r["workers"] == workers
            }
            drained, lived = rows["drain"], rows["live"]
            print(
                f"{backend:<11}{workers:>8}{drained['rate']:>10,.0f}{drained['rate'] / base:>11.2f}"
                f"{lived['rate']:>8.1f}{gates.fmt(lived['p50_ms']):>9}{gates.fmt(lived['p99_ms']):>9}"
            )


def save(report: Report) -> Path:
    gates.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = gates.RESULTS_DIR / f"deliveries-{datetime.now(UTC):%Y%m%d-%H%M%S}.json"
    document = {"machine": report.machine, "config": asdict(report.config), "rows": report.rows}
    path.write_text(json.dumps(document, indent=2, default=str))
    return path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_receiver:
        serve_receiver(args.port)
        return 0
    config = make_config(args)
    started = time.monotonic()
    try:
        report = asyncio.run(bench(config))
    except gates.BenchError as exc:
        gates.log(f"error: {exc}")
        return 1
    print_report(report)
    print(f"\n{time.monotonic() - started:.0f} s; results in {save(report)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
