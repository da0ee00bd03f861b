"""Gate benchmark: does signoff carry the load its design promises on a small machine?

One command starts every server it measures as a subprocess on 127.0.0.1 (a fresh database
each), drives it with 64 concurrent clients (coroutines in this process sharing one HTTP client:
a minimal keep-alive HTTP/1.1 client, see ``RawHttp`` for why not httpx; ``--client httpx``
uses one shared ``httpx.AsyncClient`` instead), stops it, and prints the results next to the
targets:

  baselines  Two minimal FastAPI apps that store one SQLite row (WAL, synchronous=NORMAL) per
             POST: one commit per request, and group commit (one writer commits everything
             queued, then answers each request). They show what this machine, this client
             and SQLite can do at all, so signoff's numbers can be read as a ratio.
  create     POST /v1/approvals, with an Idempotency-Key as the SDK sends it. With --email,
             SMTP is configured (a sink process that drops every message), so each create
             also queues an email to its approver, which the in-process worker sends.
  decide     POST /v1/approvals/{id}/decisions on the approvals the create round made.
  callback   Round trip: create with a callback_url -> approve -> the signed approval.settled
             webhook reaches a receiver in this process that checks it with
             ``signoff.webhooks.verify``. Also: decision response -> callback arrival, under
             load and with a single client (the latency without queueing).
  wait       Round trip with a long poll: create -> GET .../wait issued -> approve -> the wait
             answers. Also: decision response -> wait answer.
  idle       100,000 pending approvals (5,000 with --quick) written before the server starts
             (one through signoff's create service, the rest cloned from it in the approvals
             tables); after a settling pause, the server's CPU (/proc/PID/stat) and RSS (VmRSS).

Load scenarios run ``--rounds`` times for ``--duration`` seconds each (decide: until the
round's approvals run out) and report the median round. The load generator shares the cores
with the server, so each round reports both processes' CPU and the whole machine's.
SQLite always; PostgreSQL when ``--postgres URL`` or SIGNOFF_BENCH_POSTGRES_URL names a server
(a database is created for the run and dropped after). ``--profile`` samples the server with
py-spy during one extra SQLite create round. A JSON copy of the results goes to bench/results/.

    .venv/bin/python bench/gates.py [--quick] [--email] [--postgres URL] [--scenarios create,...]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import platform
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import httpx
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "bench" / "results"
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
CLIENTS = 64
ADMIN_KEY = f"sok_bench_{uuid.uuid4().hex}"
REQUESTER, APPROVER = "requester@bench.localhost", "approver@bench.localhost"
LOAD_SCENARIOS = ("create", "decide", "callback", "wait")
SCENARIOS = ("baselines", *LOAD_SCENARIOS, "idle")
BASELINES = ("per-request commit", "group commit")
OP_SECONDS = 60.0  # longest one operation may take before it counts as an error
LONG_POLL_SECONDS = 30
KEEP_ALIVE_SECONDS = 4.0  # uvicorn closes connections idle for 5 s
TRANSPORT_ERRORS = (httpx.HTTPError, OSError, asyncio.IncompleteReadError, ValueError)

Metrics = dict[str, Any]
Op = Callable[[], Awaitable[dict[str, float] | None]]


class BenchError(Exception):
    """The benchmark cannot go on (a server did not start, a database is unreachable)."""


class OpFailed(Exception):
    """A server answered something other than what the operation expects."""


class Exhausted(Exception):
    """An operation ran out of work (the decide round's approvals are all decided)."""


# --- configuration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    scenarios: tuple[str, ...]
    duration: float
    rounds: int
    warmup: float
    idle_rows: int
    idle_settle: float
    idle_sample: float
    postgres_url: str | None
    profile: bool
    client: str
    quick: bool
    email: bool


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run, small counts")
    parser.add_argument("--duration", type=float, help="seconds per round (8; 2 with --quick)")
    parser.add_argument("--rounds", type=int, help="rounds per load scenario (3; 1 with --quick)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated")
    parser.add_argument("--postgres", help="PostgreSQL admin URL; else $SIGNOFF_BENCH_POSTGRES_URL")
    parser.add_argument("--profile", action="store_true", help="py-spy the SQLite create load")
    parser.add_argument(
        "--email", action="store_true", help="configure SMTP (a local sink): approvers are emailed"
    )
    parser.add_argument(
        "--client", choices=("raw", "httpx"), default="raw", help="the load's HTTP client"
    )
    parser.add_argument("--serve-baseline", choices=BASELINES, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def make_config(args: argparse.Namespace) -> Config:
    scenarios = tuple(name.strip() for name in args.scenarios.split(",") if name.strip())
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"unknown scenarios {sorted(unknown)}; choose from {SCENARIOS}")
    quick = args.quick
    return Config(
        scenarios=scenarios,
        duration=args.duration or (2.0 if quick else 8.0),
        rounds=args.rounds or (1 if quick else 3),
        warmup=0.5 if quick else 2.0,
        idle_rows=5_000 if quick else 100_000,
        idle_settle=2.0 if quick else 10.0,
        idle_sample=5.0 if quick else 30.0,
        postgres_url=args.postgres or os.environ.get("SIGNOFF_BENCH_POSTGRES_URL"),
        profile=args.profile,
        client=args.client,
        quick=quick,
        email=args.email,
    )


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- statistics and /proc --------------------------------------------------------------------


def percentile_ms(seconds: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile, in milliseconds."""
    if not seconds:
        return None
    ordered = sorted(seconds)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered)) - 1))
    return ordered[rank] * 1000


def median_round(rounds: list[Metrics]) -> Metrics:
    """Each number's median over the rounds; ops and errors are summed."""
    merged: Metrics = {}
    for key in rounds[0]:
        values = [r[key] for r in rounds if isinstance(r.get(key), int | float)]
        if key in ("ops", "errors"):
            merged[key] = sum(values)
        elif values:
            merged[key] = statistics.median(values)
    merged["error_samples"] = [s for r in rounds for s in r.get("error_samples", [])][:3]
    return merged


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process (all its threads)."""
    return _stat_cpu_seconds(Path(f"/proc/{pid}/stat").read_text())


def postgres_cpu_seconds() -> float:
    """CPU time of the running PostgreSQL processes (0 when there are none)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            text = stat.read_text()
            if "(postgres)" in text:
                total += _stat_cpu_seconds(text)
    return total


def _stat_cpu_seconds(stat: str) -> float:
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_mb(pid: int, field_name: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def machine_ticks() -> tuple[int, int]:
    """All cores' busy and total jiffies since boot (busy: neither idle nor waiting on I/O)."""
    ticks = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    total = sum(ticks[:8])  # guest time is already counted in user time
    return total - ticks[3] - ticks[4], total


class CpuMeter:
    """CPU used since creation, in percent of one core: by the server process, by this (load
    generator) process, by the running PostgreSQL processes, and by everything else: the
    kernel's network work, processes that exited meanwhile (PostgreSQL backends of closed
    connections), and any other program (more than that means the numbers are skewed)."""

    def __init__(self, server_pid: int) -> None:
        self.pid = server_pid
        self.server = cpu_seconds(server_pid)
        self.own = time.process_time()
        self.postgres = postgres_cpu_seconds()
        self.machine = machine_ticks()

    def percent(self, elapsed: float) -> Metrics:
        busy, total = (now - then for now, then in zip(machine_ticks(), self.machine, strict=True))
        found = {
            "server_cpu_pct": 100 * (cpu_seconds(self.pid) - self.server) / elapsed,
            "loadgen_cpu_pct": 100 * (time.process_time() - self.own) / elapsed,
            "postgres_cpu_pct": 100 * (postgres_cpu_seconds() - self.postgres) / elapsed,
            "machine_busy_pct": 100 * busy / max(total, 1),
        }
        cores_busy = found["machine_busy_pct"] * len(os.sched_getaffinity(0))
        found["other_cpu_pct"] = cores_busy - sum(found[k] for k in list(found)[:3])
        return found


# --- the load loop ---------------------------------------------------------------------------


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    extras: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)

    def summary(self, elapsed: float) -> Metrics:
        found: Metrics = {
            "ops": len(self.latencies),
            "errors": self.errors.total(),
            "seconds": elapsed,
            "rate": len(self.latencies) / elapsed,
            "p50_ms": percentile_ms(self.latencies, 0.50),
            "p99_ms": percentile_ms(self.latencies, 0.99),
            "error_samples": [f"{n}x {e}" for e, n in self.errors.most_common(3)],
        }
        for name, values in self.extras.items():
            found[f"{name}_p50_ms"] = percentile_ms(values, 0.50)
            found[f"{name}_p99_ms"] = percentile_ms(values, 0.99)
        return found


async def _client_loop(op: Op, tally: Tally, deadline: float) -> None:
    """One of the concurrent clients: run ``op`` back to back until the deadline."""
    while time.monotonic() < deadline:
        started = time.perf_counter()
        try:
            extra = await asyncio.wait_for(op(), OP_SECONDS)
        except Exhausted:
            return
        except (*TRANSPORT_ERRORS, OpFailed, TimeoutError) as exc:
            tally.errors[f"{type(exc).__name__}: {str(exc)[:120]}"] += 1
            continue
        tally.latencies.append(time.perf_counter() - started)
        for name, value in (extra or {}).items():
            tally.extras[name].append(value)


async def run_load(op: Op, seconds: float, server_pid: int, clients: int = CLIENTS) -> Metrics:
    """``clients`` concurrent clients run ``op`` for ``seconds``; rate, latencies and CPU."""
    tally, meter = Tally(), CpuMeter(server_pid)
    started = time.monotonic()
    deadline = started + seconds
    await asyncio.gather(*(_client_loop(op, tally, deadline) for _ in range(clients)))
    elapsed = time.monotonic() - started
    return tally.summary(elapsed) | meter.percent(elapsed)


async def run_rounds(label: str, make_op: Callable[[], Op], config: Config, pid: int) -> Metrics:
    rounds = []
    for number in range(1, config.rounds + 1):
        found = await run_load(make_op(), config.duration, pid)
        log(f"  {label} round {number}: {describe(found)}")
        rounds.append(found)
    return median_round(rounds)


def describe(m: Metrics) -> str:
    text = f"{m['rate']:,.0f}/s p50 {fmt(m['p50_ms'])} ms p99 {fmt(m['p99_ms'])} ms"
    text += f"; CPU: server {m['server_cpu_pct']:.0f}%, load generator "
    text += f"{m['loadgen_cpu_pct']:.0f}%, postgres {m['postgres_cpu_pct']:.0f}%, "
    text += f"other {m['other_cpu_pct']:.0f}%"
    return text + (f", {m['errors']} errors {m['error_samples']}" if m["errors"] else "")


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


# --- processes -------------------------------------------------------------------------------


@dataclass
class Process:
    name: str
    url: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def tail(self, lines: int = 15) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def start_process(name: str, argv: list[str], env: dict[str, str], workdir: Path) -> Process:
    log_path = workdir / f"{name}.log"
    port = argv[argv.index("--port") + 1]
    with log_path.open("wb") as out:
        popen = subprocess.Popen(argv, env=env, cwd=workdir, stdout=out, stderr=subprocess.STDOUT)
    return Process(name, f"http://{HOST}:{port}", popen, log_path)


def stop_process(process: Process) -> None:
    """SIGTERM (uvicorn shuts down gracefully), then SIGKILL if it lingers."""
    if process.popen.poll() is None:
        process.popen.send_signal(signal.SIGTERM)
        try:
            process.popen.wait(15)
        except subprocess.TimeoutExpired:
            process.popen.kill()
            process.popen.wait(5)


async def wait_healthy(process: Process, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    async with httpx.AsyncClient(timeout=2.0) as http:
        while time.monotonic() < deadline:
            if process.popen.poll() is not None:
                raise BenchError(f"{process.name} exited:\n{process.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"{process.url}/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise BenchError(f"{process.name} not healthy after {limit:.0f}s:\n{process.tail()}")


@contextlib.asynccontextmanager
async def spawned(
    name: str, argv: list[str], env: dict[str, str], workdir: Path
) -> AsyncIterator[Process]:
    process = start_process(name, argv, env, workdir)
    try:
        await wait_healthy(process)
        yield process
    finally:
        await asyncio.to_thread(stop_process, process)


def signoff_env(database_url: str, port: int, smtp_port: int | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNOFF_")}
    env |= {
        "SIGNOFF_DATABASE_URL": database_url,
        "SIGNOFF_ADMIN_API_KEY": ADMIN_KEY,
        "SIGNOFF_PUBLIC_URL": f"http://{HOST}:{port}",
        "SIGNOFF_LOG_LEVEL": "warning",
        "SIGNOFF_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",  # the benchmark's receiver
    }
    if smtp_port is not None:  # --email: approvers are emailed, to the sink
        env |= {"SIGNOFF_SMTP_HOST": HOST, "SIGNOFF_SMTP_PORT": str(smtp_port)}
        env["SIGNOFF_SMTP_SECURITY"] = "none"
    return env


def signoff_server(
    database_url: str, workdir: Path, name: str, smtp_port: int | None = None
) -> Any:
    port = free_port()
    argv = [str(BIN / "signoff"), "server", "run", "--host", HOST, "--port", str(port)]
    return spawned(name, argv, signoff_env(database_url, port, smtp_port), workdir)


@contextlib.contextmanager
def smtp_sink(workdir: Path) -> Iterator[int]:
    """An SMTP server on loopback that accepts every message and keeps none (aiosmtpd's
    ``Sink``), in its own process; its port."""
    port = free_port()
    argv = [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"{HOST}:{port}"]
    argv += ["-c", "aiosmtpd.handlers.Sink"]
    with (workdir / "smtp-sink.log").open("wb") as out:
        popen = subprocess.Popen(argv, cwd=workdir, stdout=out, stderr=subprocess.STDOUT)
    sink = Process("smtp-sink", f"smtp://{HOST}:{port}", popen, workdir / "smtp-sink.log")
    try:
        deadline = time.monotonic() + 30
        while not _accepts(port):
            if popen.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"the SMTP sink did not start:\n{sink.tail()}")
            time.sleep(0.05)
        yield port
    finally:
        stop_process(sink)


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((HOST, port)) == 0


# --- HTTP clients ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Http(Protocol):
    """What the scenarios need from an HTTP client: JSON in, status and body out."""

    async def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Metrics | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer: ...

    async def aclose(self) -> None: ...


class StaleConnection(ConnectionError):
    """The server closed a kept-alive connection before answering (so it read no request)."""


class _Connection:
    """One keep-alive HTTP/1.1 connection; one request at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.idle_since = time.monotonic()

    @classmethod
    async def open(cls, host: str, port: int) -> _Connection:
        return cls(*await asyncio.open_connection(host, port))

    def close(self) -> None:
        self.writer.close()

    async def exchange(self, request: bytes) -> tuple[Answer, bool]:
        """Send one request; the answer, and whether the connection may be used again."""
        self.writer.write(request)
        try:
            head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                raise
            raise StaleConnection("closed before answering") from exc
        status_line, *lines = head.split("\r\n")
        fields = (line.partition(":") for line in lines if line)
        headers = {name.strip().lower(): value.strip() for name, _, value in fields}
        if headers.get("transfer-encoding") == "chunked":
            body = await self._chunked()
        else:
            body = await self.reader.readexactly(int(headers.get("content-length", 0)))
        return Answer(int(status_line.split()[1]), body), headers.get("connection") != "close"

    async def _chunked(self) -> bytes:
        body = b""
        while size := int((await self.reader.readline()).split(b";")[0], 16):
            body += (await self.reader.readexactly(size + 2))[:-2]
        await self.reader.readline()
        return body


class RawHttp:
    """A minimal HTTP/1.1 client: a last-in-first-out pool of keep-alive connections.

    Why not httpx: on this machine a request costs httpx about 1 ms of CPU, and with 64
    connections one shared ``httpx.AsyncClient`` manages only 100-200 requests/s, because its
    pool checks every connection's socket on every request (httpcore ``has_expired``). It
    would measure itself. This client needs a few tens of microseconds per request.
    """

    def __init__(self, base_url: str) -> None:
        self.netloc = base_url.split("://", 1)[1]
        host, port = self.netloc.rsplit(":", 1)
        self.host, self.port = host, int(port)
        self.idle: list[_Connection] = []

    async def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Metrics | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        target = f"{path}?{urllib.parse.urlencode(params)}" if params else path
        payload = b"" if body is None else json.dumps(body).encode()
        lines = [f"{method} {target} HTTP/1.1", f"host: {self.netloc}"]
        lines += [f"content-length: {len(payload)}", "content-type: application/json"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        request = "\r\n".join([*lines, "", ""]).encode() + payload
        connection = self._pooled()
        if connection is not None:
            with contextlib.suppress(StaleConnection):
                return await self._exchange(connection, request)
        return await self._exchange(await _Connection.open(self.host, self.port), request)

    def _pooled(self) -> _Connection | None:
        """The most recently used connection the server has not closed for idling."""
        while self.idle:
            connection = self.idle.pop()
            if time.monotonic() - connection.idle_since < KEEP_ALIVE_SECONDS:
                return connection
            connection.close()
        return None

    async def _exchange(self, connection: _Connection, request: bytes) -> Answer:
        try:
            answer, reusable = await connection.exchange(request)
        except BaseException:
            connection.close()
            raise
        if reusable:
            connection.idle_since = time.monotonic()
            self.idle.append(connection)
        else:
            connection.close()
        return answer

    async def aclose(self) -> None:
        while self.idle:
            self.idle.pop().close()


class HttpxHttp:
    """The same calls through one shared ``httpx.AsyncClient`` (``--client httpx``)."""

    def __init__(self, base_url: str) -> None:
        limits = httpx.Limits(max_connections=CLIENTS * 2 + 16, max_keepalive_connections=None)
        self.client = httpx.AsyncClient(base_url=base_url, limits=limits, timeout=OP_SECONDS)

    async def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Metrics | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        response = await self.client.request(
            method, path, json=body, params=params, headers=headers
        )
        return Answer(response.status_code, response.content)

    async def aclose(self) -> None:
        await self.client.aclose()


@contextlib.asynccontextmanager
async def http_client(base_url: str, kind: str) -> AsyncIterator[Http]:
    """The one client all simulated clients share."""
    http: Http = HttpxHttp(base_url) if kind == "httpx" else RawHttp(base_url)
    try:
        yield http
    finally:
        await http.aclose()


# --- databases -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Backend:
    name: str
    fresh: Callable[[Path], contextlib.AbstractContextManager[str]]  # workdir -> database URL


@contextlib.contextmanager
def fresh_sqlite(workdir: Path) -> Iterator[str]:
    yield f"sqlite:///{workdir / f'signoff-{uuid.uuid4().hex[:8]}.db'}"


def _postgres_admin(admin_url: str) -> Any:
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(admin_url)
    conninfo = url.set(drivername="postgresql", database=url.database or "postgres")
    return psycopg.connect(
        conninfo.render_as_string(hide_password=False), autocommit=True, connect_timeout=10
    )


@contextlib.contextmanager
def fresh_postgres(admin_url: str, workdir: Path) -> Iterator[str]:
    """A new database for this run, at signoff's schema; dropped afterwards."""
    from psycopg import sql
    from sqlalchemy.engine import make_url

    name = f"signoff_bench_{uuid.uuid4().hex[:12]}"
    with _postgres_admin(admin_url) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_url(admin_url).set(drivername="postgresql+psycopg", database=name)
    database_url = url.render_as_string(hide_password=False)
    try:
        env = signoff_env(database_url, 0)
        upgrade = [str(BIN / "signoff"), "db", "upgrade"]
        subprocess.run(upgrade, env=env, cwd=workdir, check=True, capture_output=True, timeout=120)
        yield database_url
    finally:
        with _postgres_admin(admin_url) as conn:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            conn.execute(drop)


def postgres_version(admin_url: str) -> str:
    with _postgres_admin(admin_url) as conn:
        return str(conn.execute("SHOW server_version").fetchone()[0])


def backends(config: Config, machine: Metrics) -> list[Backend]:
    found = [Backend("sqlite", fresh_sqlite)]
    if config.postgres_url:
        try:
            machine["postgresql"] = postgres_version(config.postgres_url)
        except Exception as exc:  # any failure to connect means: measure without it
            log(f"PostgreSQL at {config.postgres_url} is unavailable ({exc}); skipping it")
        else:
            fresh = functools.partial(fresh_postgres, config.postgres_url)
            found.append(Backend("postgresql", fresh))
    return found


# --- signoff as a client sees it -------------------------------------------------------------


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


async def expect_ok(request: Awaitable[Answer]) -> Any:
    answer = await request
    if not 200 <= answer.status < 300:
        raise OpFailed(f"{answer.status} {answer.body[:200].decode(errors='replace')}")
    return answer.json()


@dataclass(frozen=True)
class Actors:
    requester: dict[str, str]
    approver: dict[str, str]
    webhook_secret: str


async def setup_actors(http: Http) -> Actors:
    """A requester and an approver with their own API keys, through the admin API."""
    admin, keys = bearer(ADMIN_KEY), []
    for email in (REQUESTER, APPROVER):
        await expect_ok(http.call("POST", "/v1/users", body={"email": email}, headers=admin))
        body = {"user": email}
        created = await expect_ok(http.call("POST", "/v1/api-keys", body=body, headers=admin))
        keys.append(created["key"])
    secret = await expect_ok(http.call("GET", "/v1/webhook-secret", headers=admin))
    return Actors(bearer(keys[0]), bearer(keys[1]), secret["secret"])


@dataclass(frozen=True)
class Signoff:
    """The three calls the scenarios make."""

    http: Http
    actors: Actors

    async def create(self, callback_url: str | None = None) -> str:
        body: dict[str, Any] = {"title": "Promote churn-model v42?", "approvers": [APPROVER]}
        if callback_url:
            body["callback_url"] = callback_url
        headers = self.actors.requester | {"idempotency-key": uuid.uuid4().hex}
        request = self.http.call("POST", "/v1/approvals", body=body, headers=headers)
        created = await expect_ok(request)
        return str(created["id"])

    async def approve(self, approval_id: str) -> None:
        path = f"/v1/approvals/{approval_id}/decisions"
        body, headers = {"verdict": "approve"}, self.actors.approver
        request = self.http.call("POST", path, body=body, headers=headers)
        if (await expect_ok(request))["status"] != "approved":
            raise OpFailed(f"{approval_id} did not settle on one approval")

    async def wait(self, approval_id: str, seconds: float) -> str:
        path, params = f"/v1/approvals/{approval_id}/wait", {"timeout": seconds}
        request = self.http.call("GET", path, params=params, headers=self.actors.requester)
        return str((await expect_ok(request))["status"])


# --- the callback receiver -------------------------------------------------------------------


class Receiver:
    """An ASGI app in this process: verifies each callback and notes when it arrived."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}/callback"
        self.expected: dict[str, asyncio.Future[float]] = {}
        self.rejected = 0

    def expect(self, approval_id: str) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.expected[approval_id] = future
        return future

    def forget(self, approval_id: str) -> None:
        self.expected.pop(approval_id, None)

    async def __call__(self, scope: Metrics, receive: Any, send: Any) -> None:
        arrived = time.perf_counter()
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message.get("body", b""), message.get("more_body", False)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        status = self.accept(body, headers, arrived)
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def accept(self, body: bytes, headers: dict[str, str], arrived: float) -> int:
        from signoff import errors, webhooks

        try:
            event = webhooks.verify(body, headers, self.secret)
        except errors.InvalidSignature:
            self.rejected += 1
            return 400
        future = self.expected.pop(event["subject"], None)
        if future is not None and not future.done():
            future.set_result(arrived)
        return 204


@contextlib.asynccontextmanager
async def receiving(secret: str) -> AsyncIterator[Receiver]:
    """Serve a ``Receiver`` with uvicorn on this event loop."""
    import uvicorn

    receiver = Receiver(secret)
    options = {"interface": "asgi3", "lifespan": "off", "log_level": "warning"}
    config = uvicorn.Config(receiver, host=HOST, port=receiver.port, access_log=False, **options)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started or task.done():
                break
            await asyncio.sleep(0.05)
        if not server.started:
            raise BenchError("the callback receiver did not start")
        yield receiver
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)
    if receiver.rejected:
        raise BenchError(f"{receiver.rejected} callbacks failed signature verification")


# --- scenarios: one operation each -----------------------------------------------------------


def create_op(api: Signoff, made: deque[str]) -> Op:
    async def create() -> None:
        made.append(await api.create())

    return create


def decide_op(api: Signoff, pending: deque[str]) -> Op:
    async def decide() -> None:
        if not pending:
            raise Exhausted
        await api.approve(pending.popleft())

    return decide


def callback_op(api: Signoff, receiver: Receiver) -> Op:
    async def round_trip() -> dict[str, float]:
        approval_id = await api.create(callback_url=receiver.url)
        arrival = receiver.expect(approval_id)
        try:
            sent = time.perf_counter()
            await api.approve(approval_id)
            answered = time.perf_counter()
            arrived = await asyncio.wait_for(arrival, OP_SECONDS / 2)
        finally:
            receiver.forget(approval_id)
        # 0 when the callback landed before the decision's answer reached us
        return {"callback": max(0.0, arrived - answered), "callback_since_sent": arrived - sent}

    return round_trip


def wait_op(api: Signoff) -> Op:
    async def round_trip() -> dict[str, float]:
        approval_id = await api.create()
        waiting = asyncio.ensure_future(api.wait(approval_id, LONG_POLL_SECONDS))
        await asyncio.sleep(0)  # the long poll goes out first
        try:
            await api.approve(approval_id)
            decided = time.perf_counter()
            status = await waiting
        finally:
            waiting.cancel()
        if status != "approved":
            raise OpFailed(f"wait() answered {status!r}")
        return {"wake": max(0.0, time.perf_counter() - decided)}

    return round_trip


# --- benchmarks ------------------------------------------------------------------------------


@dataclass
class Report:
    machine: Metrics
    config: Config
    rows: list[Metrics] = field(default_factory=list)
    notes: Metrics = field(default_factory=dict)

    def add(self, backend: str, scenario: str, found: Metrics) -> None:
        self.rows.append({"backend": backend, "scenario": scenario} | found)

    def find(self, backend: str, scenario: str) -> Metrics | None:
        rows = (r for r in self.rows if r["backend"] == backend and r["scenario"] == scenario)
        return next(rows, None)


async def bench_load(config: Config, backend: Backend, workdir: Path, report: Report) -> None:
    """create, decide, callback and wait rounds against one freshly started server."""
    wanted = [s for s in LOAD_SCENARIOS if s in config.scenarios]
    if not wanted:
        return
    emailed = " (approvers emailed)" if config.email else ""
    log(f"[{backend.name}] load: {', '.join(wanted)}{emailed}")
    with backend.fresh(workdir) as url, contextlib.ExitStack() as stack:
        smtp_port = stack.enter_context(smtp_sink(workdir)) if config.email else None
        server = signoff_server(url, workdir, f"signoff-{backend.name}", smtp_port)
        async with server as process, http_client(process.url, config.client) as http:
            api = Signoff(http, await setup_actors(http))
            await run_load(create_op(api, deque()), config.warmup, process.pid)
            await run_scenarios(config, backend.name, api, process.pid, report)
            report.notes[f"{backend.name}_load_peak_rss_mb"] = memory_mb(process.pid, "VmHWM")
            if config.profile and backend.name == "sqlite":
                report.notes["profile"] = await profile_creates(config, api, process.pid)


async def run_scenarios(
    config: Config, backend: str, api: Signoff, pid: int, report: Report
) -> None:
    if "create" in config.scenarios or "decide" in config.scenarios:
        await create_and_decide(config, backend, api, pid, report)
    if "callback" in config.scenarios:
        async with receiving(api.actors.webhook_secret) as receiver:
            found = await run_rounds("callback", lambda: callback_op(api, receiver), config, pid)
            report.add(backend, "callback", found)
            alone = await run_load(callback_op(api, receiver), config.duration, pid, clients=1)
            log(f"  callback with 1 client: {describe(alone)}")
            report.add(backend, "callback, 1 client", median_round([alone]))
    if "wait" in config.scenarios:
        report.add(backend, "wait", await run_rounds("wait", lambda: wait_op(api), config, pid))


async def create_and_decide(
    config: Config, backend: str, api: Signoff, pid: int, report: Report
) -> None:
    """Alternate create and decide rounds; each decide round works off the last create's."""
    found: dict[str, list[Metrics]] = defaultdict(list)
    for number in range(1, config.rounds + 1):
        made: deque[str] = deque()
        found["create"].append(await run_load(create_op(api, made), config.duration, pid))
        log(f"  create round {number}: {describe(found['create'][-1])}")
        if "decide" in config.scenarios:
            found["decide"].append(await run_load(decide_op(api, made), config.duration, pid))
            log(f"  decide round {number}: {describe(found['decide'][-1])}")
    for scenario, rounds in found.items():
        report.add(backend, scenario, median_round(rounds))


async def bench_baselines(config: Config, workdir: Path, report: Report) -> None:
    log("[sqlite] baselines: a minimal FastAPI endpoint committing one row per request")
    for mode in BASELINES:
        port = free_port()
        path = workdir / f"baseline-{mode.split()[0]}.db"
        argv = [sys.executable, __file__, "--serve-baseline", mode, "--port", str(port)]
        argv += ["--db", str(path)]
        server = spawned(f"baseline-{port}", argv, dict(os.environ), workdir)
        async with server as process, http_client(process.url, config.client) as http:
            op = baseline_op(http)
            await run_load(op, config.warmup, process.pid)
            found = await run_rounds(mode, lambda op=op: op, config, process.pid)
        report.add("sqlite", f"baseline: {mode}", found)


def baseline_op(http: Http) -> Op:
    body = {"title": "Promote churn-model v42?", "approvers": [APPROVER]}

    async def post() -> None:
        await expect_ok(http.call("POST", "/items", body=body))

    return post


async def bench_idle(config: Config, backend: Backend, workdir: Path, report: Report) -> None:
    rows = config.idle_rows
    log(f"[{backend.name}] idle: writing {rows:,} pending approvals before the server starts")
    with backend.fresh(workdir) as url:
        await asyncio.to_thread(write_idle_approvals, url, rows)
        async with signoff_server(url, workdir, f"signoff-{backend.name}-idle") as process:
            await asyncio.sleep(config.idle_settle)
            found = await sample_idle(process.pid, config.idle_sample)
    log(f"  idle: {found['cpu_pct']:.2f}% of a core, {found['rss_mb']:.0f} MB RSS")
    report.add(backend.name, "idle", {"pending": rows} | found)


async def sample_idle(pid: int, seconds: float) -> Metrics:
    """CPU over ``seconds`` as a percentage of one core; the largest RSS seen (every second)."""
    cpu_before, started, rss = cpu_seconds(pid), time.monotonic(), []
    while time.monotonic() - started < seconds:
        rss.append(memory_mb(pid))
        await asyncio.sleep(min(1.0, seconds - (time.monotonic() - started)))
    elapsed = time.monotonic() - started
    cpu_pct = 100 * (cpu_seconds(pid) - cpu_before) / elapsed
    return {"cpu_pct": cpu_pct, "rss_mb": max(rss), "seconds": elapsed}


def write_idle_approvals(url: str, count: int) -> None:
    """One approval through signoff's create service, then ``count - 1`` copies of its rows in
    ``approvals`` and ``approval_approvers`` (the creation's event and audit entry, which an
    idle server never reads, are not copied). Deadlines spread over 1 to 7 days."""
    from signoff import schemas
    from signoff.domain.principals import Context, Principal, system_context
    from signoff.services import approvals, principals, server
    from signoff.settings import Settings

    db, keys = server.open_database(Settings(database_url=url))
    try:
        admin = system_context("bench")
        requester = principals.create_user(db, admin, email=REQUESTER)
        principals.create_user(db, admin, email=APPROVER)
        spec = {"title": "Idle approval", "approvers": [APPROVER], "timeout": "7d"}
        template = approvals.create(
            db,
            Context(principal=Principal(user=requester)),
            schemas.ApprovalCreate.model_validate(spec),
            secret_key=keys.secret_key,
        )
        clone_approval(db, template.approval.id, count - 1)
    finally:
        db.dispose()


def clone_approval(db: Any, approval_id: str, count: int, batch: int = 5_000) -> None:
    from sqlalchemy import insert, select

    from signoff.domain import ids
    from signoff.store.tables import ApprovalApproverRow, ApprovalRow

    approvals, approvers = ApprovalRow.__table__, ApprovalApproverRow.__table__
    with db.read() as session:
        query = select(approvals).where(approvals.c.id == approval_id)
        template = dict(session.execute(query).mappings().one())
        query = select(approvers).where(approvers.c.approval_id == approval_id)
        refs = [dict(ref) for ref in session.execute(query).mappings()]
    now = datetime.now(UTC)
    for start in range(0, count, batch):
        rows, ref_rows = [], []
        for _ in range(min(batch, count - start)):
            new_id, due = ids.new_id("ap"), now + timedelta(hours=random.uniform(24, 168))
            rows.append(template | {"id": new_id, "deadline_at": due, "due_at": due})
            ref_rows += [ref | {"approval_id": new_id} for ref in refs]
        with db.write() as session:
            session.execute(insert(approvals), rows)
            session.execute(insert(approvers), ref_rows)


# --- profiling -------------------------------------------------------------------------------


async def profile_creates(config: Config, api: Signoff, pid: int) -> Metrics | None:
    """py-spy the server during one more (unreported) create round; the top costs."""
    py_spy = shutil.which("py-spy", path=str(BIN)) or shutil.which("py-spy")
    if py_spy is None:
        log("  profile: py-spy is not installed; skipping")
        return None
    seconds = max(2, int(min(config.duration, 10)))
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"profile-create-{datetime.now(UTC):%Y%m%d-%H%M%S}.txt"
    argv = [py_spy, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "250"]
    argv += ["--format", "raw", "--output", str(out), "--gil", "--nonblocking"]
    spy = await asyncio.create_subprocess_exec(
        *argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    found = await run_load(create_op(api, deque()), seconds + 1, pid)
    _, stderr = await asyncio.wait_for(spy.communicate(), 60)
    if not out.exists():
        log(f"  profile: py-spy failed: {stderr.decode(errors='replace')[-300:]}")
        return None
    log(f"  profile: {out.relative_to(ROOT)} (create at {found['rate']:,.0f}/s while sampled)")
    return {"file": str(out.relative_to(ROOT))} | summarize_profile(out)


def summarize_profile(path: Path, top: int = 15) -> Metrics:
    """Where the interpreter's time went (py-spy samples taken while a thread held the GIL):
    by the package of the innermost frame, and signoff's functions including what they call."""
    by_package: Counter[str] = Counter()
    signoff: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_function(frame) for frame in stack.split(";")]
        total += int(count)
        by_package[_package(frames[-1])] += int(count)
        for frame in {f for f in frames if "(signoff/" in f}:
            signoff[frame] += int(count)

    def shares(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(name, round(100 * n / max(total, 1), 1)) for name, n in counter.most_common(top)]

    return {"samples": total, "self_by_package_pct": shares(by_package)} | {
        "signoff_inclusive_pct": shares(signoff)
    }


def _function(frame: str) -> str:
    """``f (signoff/x.py:51)`` -> ``f (signoff/x.py)``: one entry per function, not per line."""
    name, _, where = frame.strip().rpartition(" (")
    return f"{name} ({where.rsplit(':', 1)[0]})" if where else frame.strip()


def _package(function: str) -> str:
    where = function.rpartition(" (")[2].rstrip(")")
    return where.split("/", 1)[0] if "/" in where else where


# --- the baselines' server side (run as: gates.py --serve-baseline MODE) ---------------------


class Item(BaseModel):
    title: str
    approvers: list[str]


class RowStore:
    """One SQLite connection in WAL mode with synchronous=NORMAL, as signoff configures it."""

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS items "
            "(id TEXT PRIMARY KEY, title TEXT, approvers TEXT, created_at TEXT)"
        )
        self.lock = threading.Lock()

    def commit(self, rows: list[tuple[str, ...]]) -> None:
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.executemany("INSERT INTO items VALUES (?, ?, ?, ?)", rows)
            self.conn.execute("COMMIT")


def item_row(item: Item) -> tuple[str, ...]:
    created_at = datetime.now(UTC).isoformat()
    return (uuid.uuid4().hex, item.title, json.dumps(item.approvers), created_at)


class GroupCommitter:
    """Requests queue their row and wait; one writer commits everything queued at once."""

    def __init__(self, store: RowStore) -> None:
        self.store = store
        self.queue: asyncio.Queue[tuple[tuple[str, ...], asyncio.Future[None]]] = asyncio.Queue()

    async def submit(self, row: tuple[str, ...]) -> None:
        done = asyncio.get_running_loop().create_future()
        await self.queue.put((row, done))
        await done

    async def run(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while not self.queue.empty():
                batch.append(self.queue.get_nowait())
            try:
                await asyncio.to_thread(self.store.commit, [row for row, _ in batch])
            except sqlite3.Error as exc:
                for _, done in batch:
                    done.set_exception(exc)
            else:
                for _, done in batch:
                    done.set_result(None)


def per_request_app(store: RowStore) -> Any:
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/items", status_code=201)
    def post_item(item: Item) -> dict[str, str]:  # a worker thread, like signoff's endpoints
        row = item_row(item)
        store.commit([row])
        return {"id": row[0]}

    return app


def group_commit_app(store: RowStore) -> Any:
    from fastapi import FastAPI

    committer = GroupCommitter(store)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        writer = asyncio.create_task(committer.run())
        yield
        writer.cancel()

    app = FastAPI(lifespan=lifespan)

    @app.post("/items", status_code=201)
    async def post_item(item: Item) -> dict[str, str]:
        row = item_row(item)
        await committer.submit(row)
        return {"id": row[0]}

    return app


def serve_baseline(mode: str, port: int, path: str) -> None:
    import uvicorn

    store = RowStore(path)
    app = per_request_app(store) if mode == "per-request commit" else group_commit_app(store)
    app.add_api_route("/healthz", lambda: {"status": "ok"}, methods=["GET"])
    uvicorn.run(app, host=HOST, port=port, log_level="warning")


# --- the report ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gate:
    label: str
    scenario: str
    metric: str
    limit: float
    at_least: bool  # the measured value must be >= limit (else <=)
    unit: str


GATES = (
    Gate("create", "create", "rate", 2000, True, "/s"),
    Gate("decide", "decide", "rate", 2000, True, "/s"),
    Gate("round trips, callback", "callback", "rate", 1000, True, "/s"),
    Gate("round trips, wait()", "wait", "rate", 1000, True, "/s"),
    Gate("decision -> callback p50", "callback", "callback_p50_ms", 20, False, "ms"),
    Gate("decision -> callback p99", "callback", "callback_p99_ms", 200, False, "ms"),
    Gate("idle CPU", "idle", "cpu_pct", 2, False, "% core"),
    Gate("idle RSS", "idle", "rss_mb", 300, False, "MB"),
)


def verdicts(report: Report) -> list[Metrics]:
    found = []
    for backend in dict.fromkeys(r["backend"] for r in report.rows):
        for gate in GATES:
            row = report.find(backend, gate.scenario)
            value = row.get(gate.metric) if row else None
            if value is None:
                continue
            met = value >= gate.limit if gate.at_least else value <= gate.limit
            target = f"{'>=' if gate.at_least else '<='} {gate.limit:,g} {gate.unit}"
            label = gate.label + (f", {row['pending']:,} pending" if "pending" in row else "")
            found.append(
                {"backend": backend, "gate": label, "target": target}
                | {"measured": value, "unit": gate.unit, "met": met}
            )
    return found


def ratios(report: Report) -> list[Metrics]:
    """signoff's create and decide rates as a fraction of each baseline's."""
    found = []
    for baseline in BASELINES:
        base = report.find("sqlite", f"baseline: {baseline}")
        for backend in ("sqlite", "postgresql"):
            for scenario in ("create", "decide"):
                row = report.find(backend, scenario)
                if base and row:
                    ratio = row["rate"] / base["rate"]
                    found.append({"of": f"{backend} {scenario} / {baseline}", "ratio": ratio})
    return found


def print_report(report: Report, results: dict[str, Any]) -> None:
    m = report.machine
    print(
        f"\nsignoff {m['signoff']} -- {m['date']} -- {m['cpu']} x{m['nproc']}, {m['memory_gb']} GB"
    )
    print(f"{CLIENTS} concurrent clients ({report.config.client} HTTP client) on the same cores;")
    print(f"the machine was {m['background_busy_pct']:.0f}% busy before the run")
    print("CPU in % of one core; other: the kernel, exited processes, any other program\n")
    head = f"{'backend':<11}{'scenario':<29}{'rate/s':>8}{'p50 ms':>10}{'p99 ms':>10}"
    print(head + f"{'server':>8}{'loadgen':>8}{'postgres':>9}{'other':>7}{'errors':>7}")
    for row in report.rows:
        if row["scenario"] != "idle":
            print(load_line(row))
    print("\nafter the decision (p50 / p99 ms):")
    for row in report.rows:
        for line in latency_lines(row):
            print(line)
    print()
    for row in report.rows:
        if row["scenario"] == "idle":
            usage = f"{row['cpu_pct']:.2f}% of a core, {row['rss_mb']:.0f} MB RSS"
            print(f"{row['backend']:<11}idle, {row['pending']:,} pending approvals: {usage}")
    print("\nsignoff's rate / the baseline's:" if results["ratios"] else "")
    for ratio in results["ratios"]:
        print(f"  {ratio['of']:<58}{ratio['ratio']:>6.2f}")
    print("\ntargets:")
    for gate in results["gates"]:
        verdict = "met" if gate["met"] else "NOT MET"
        measured = f"{gate['measured']:,.{2 if gate['measured'] < 10 else 1}f} {gate['unit']}"
        line = f"  {gate['backend']:<11}{gate['gate']:<30}{gate['target']:>14}"
        print(f"{line}{measured:>18}  {verdict}")


def load_line(row: Metrics) -> str:
    return (
        f"{row['backend']:<11}{row['scenario']:<29}{row['rate']:>8,.0f}{fmt(row['p50_ms']):>10}"
        f"{fmt(row['p99_ms']):>10}{row['server_cpu_pct']:>7.0f}%{row['loadgen_cpu_pct']:>7.0f}%"
        f"{row['postgres_cpu_pct']:>8.0f}%{row['other_cpu_pct']:>6.0f}%{row['errors']:>7}"
    )


LATENCIES = {
    "callback": "decision answered -> callback",
    "callback_since_sent": "decision sent -> callback",
    "wake": "decision answered -> wait() answers",
}


def latency_lines(row: Metrics) -> list[str]:
    return [
        f"  {row['backend']:<11}{row['scenario']:<20}{label:<38}"
        f"{fmt(row[f'{key}_p50_ms']):>8} / {fmt(row[f'{key}_p99_ms'])}"
        for key, label in LATENCIES.items()
        if f"{key}_p50_ms" in row
    ]


def machine_info() -> Metrics:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), "?")
    meminfo = Path("/proc/meminfo").read_text().split()
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": model,
        "memory_gb": round(int(meminfo[meminfo.index("MemTotal:") + 1]) / 1024**2, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
        "signoff": source_revision(),
    }


def source_revision() -> str:
    """The commit measured, and whether src/ had uncommitted changes."""
    git = shutil.which("git")
    if git is None:
        return "unknown"
    run = functools.partial(subprocess.run, cwd=ROOT, capture_output=True, text=True, check=False)
    commit = run([git, "rev-parse", "--short", "HEAD"]).stdout.strip() or "unknown"
    dirty = run([git, "status", "--porcelain", "--", "src"]).stdout.strip()
    return f"{commit}{' + uncommitted changes in src/' if dirty else ''}"


def save(report: Report, results: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"gates-{datetime.now(UTC):%Y%m%d-%H%M%S}.json"
    document = {"machine": report.machine, "config": asdict(report.config)}
    document |= {"rows": report.rows, "notes": report.notes} | results
    path.write_text(json.dumps(document, indent=2, default=str))
    return path


# --- main ------------------------------------------------------------------------------------


async def background_busy(seconds: float = 3.0) -> float:
    """How busy the machine is before we start (anything else running skews every number)."""
    before = machine_ticks()
    await asyncio.sleep(seconds)
    busy, total = (now - then for now, then in zip(machine_ticks(), before, strict=True))
    return 100 * busy / max(total, 1)


async def bench(config: Config) -> Report:
    report = Report(machine=machine_info(), config=config)
    report.machine["background_busy_pct"] = busy = await background_busy()
    if busy > 10:
        log(f"warning: the machine is already {busy:.0f}% busy; the results will be skewed")
    with tempfile.TemporaryDirectory(prefix="signoff-bench-") as tmp:
        workdir = Path(tmp)
        if "baselines" in config.scenarios:
            await bench_baselines(config, workdir, report)
        for backend in backends(config, report.machine):
            await bench_load(config, backend, workdir, report)
            if "idle" in config.scenarios:
                await bench_idle(config, backend, workdir, report)
    return report


def run_async(coroutine: Awaitable[Report]) -> Report:
    """On uvloop when it is installed (it is with uvicorn[standard]): a cheaper client."""
    try:
        import uvloop
    except ImportError:
        factory = None
    else:
        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coroutine)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_baseline:
        serve_baseline(args.serve_baseline, args.port, args.db)
        return 0
    config = make_config(args)
    started = time.monotonic()
    try:
        report = run_async(bench(config))
    except BenchError as exc:
        log(f"error: {exc}")
        return 1
    results = {"gates": verdicts(report), "ratios": ratios(report)}
    print_report(report, results)
    print(f"\n{time.monotonic() - started:.0f} s; results in {save(report, results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
