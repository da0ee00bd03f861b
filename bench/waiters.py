"""How many pipelines can block in ``GET /v1/approvals/{id}/wait`` on one server process?

Starts a fresh signoff server (SQLite, or PostgreSQL with ``--postgres URL``), creates one
approval per waiter, opens that many concurrent long polls (raw HTTP/1.1 over asyncio streams,
so the load generator stays light), then measures:

* the server's RSS and CPU share while everyone waits (nothing should poll per waiter);
* how long it takes to decide every approval, and the decision -> wake-up latency p50/p99.

    .venv/bin/python bench/waiters.py --waiters 10000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.processes import ServerProcess

ADMIN = "sok_bench-waiters-admin"
CONCURRENCY = 64


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--waiters", type=int, default=10_000)
    parser.add_argument("--postgres", help="a PostgreSQL URL to use instead of SQLite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.postgres or f"sqlite:///{tmp}/signoff.db"
        server = ServerProcess(
            {"SIGNOFF_DATABASE_URL": url, "SIGNOFF_ADMIN_API_KEY": ADMIN}, Path(tmp) / "log"
        )
        server.start()
        try:
            result = asyncio.run(run(server, args.waiters))
        finally:
            server.stop()
    print(json.dumps(result, indent=2))


async def run(server: ServerProcess, count: int) -> dict[str, object]:
    assert server.process is not None
    pid = server.process.pid
    async with httpx.AsyncClient(
        base_url=server.url, limits=httpx.Limits(max_connections=CONCURRENCY)
    ) as http:
        pipeline, approver = await _people(http)
        ids = await _bounded([_create(http, pipeline) for _ in range(count)])
        woken: dict[str, float] = {}
        connecting = asyncio.Semaphore(256)  # not 10,000 SYNs at once into the accept backlog
        waiting = [
            asyncio.create_task(_wait(server.port, pipeline, approval_id, woken, connecting))
            for approval_id in ids
        ]
        await _until(http, count, timeout=300)
        idle = await asyncio.to_thread(_sample, pid, 10)
        decided_at: dict[str, float] = {}
        started = time.monotonic()
        await _bounded([_decide(http, approver, approval_id, decided_at) for approval_id in ids])
        await asyncio.wait_for(asyncio.gather(*waiting), timeout=120)
        elapsed = time.monotonic() - started
    latencies = sorted((woken[i] - decided_at[i]) * 1000 for i in ids)
    return {
        "waiters": count,
        "idle_rss_mb": idle["rss_mb"],
        "idle_cpu_percent_of_a_core": idle["cpu_percent"],
        "decide_all_seconds": round(elapsed, 2),
        "wake_latency_ms_p50": round(statistics.median(latencies), 1),
        "wake_latency_ms_p99": round(latencies[int(len(latencies) * 0.99) - 1], 1),
    }


async def _people(http: httpx.AsyncClient) -> tuple[str, str]:
    admin = {"authorization": f"Bearer {ADMIN}"}
    keys = []
    for email in ("pipeline@example.com", "approver@example.com"):
        (await http.post("/v1/users", json={"email": email}, headers=admin)).raise_for_status()
        keys.append(
            (await http.post("/v1/api-keys", json={"user": email}, headers=admin)).json()["key"]
        )
    return keys[0], keys[1]


async def _create(http: httpx.AsyncClient, key: str) -> str:
    body = {"title": "bench", "approvers": ["approver@example.com"]}
    response = await http.post(
        "/v1/approvals", json=body, headers={"authorization": f"Bearer {key}"}
    )
    response.raise_for_status()
    approval_id: str = response.json()["id"]
    return approval_id


async def _decide(
    http: httpx.AsyncClient, key: str, approval_id: str, decided_at: dict[str, float]
) -> None:
    response = await http.post(
        f"/v1/approvals/{approval_id}/decisions",
        json={"verdict": "approve"},
        headers={"authorization": f"Bearer {key}"},
    )
    decided_at[approval_id] = time.monotonic()
    response.raise_for_status()


async def _wait(
    port: int,
    key: str,
    approval_id: str,
    woken: dict[str, float],
    connecting: asyncio.Semaphore,
) -> None:
    """One long poll over a bare connection: far lighter than an httpx client per waiter."""
    async with connecting:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        request = (
            f"GET /v1/approvals/{approval_id}/wait?timeout=300 HTTP/1.1\r\nhost: bench\r\n"
            f"authorization: Bearer {key}\r\nconnection: close\r\n\r\n"
        )
        writer.write(request.encode())
        await writer.drain()
    response = await reader.read()
    woken[approval_id] = time.monotonic()
    writer.close()
    if b'"status":"approved"' not in response:
        raise RuntimeError(f"unexpected answer: {response[:300]!r}")


async def _bounded(jobs: list) -> list:  # type: ignore[type-arg]
    semaphore = asyncio.Semaphore(CONCURRENCY)

    async def one(job):  # type: ignore[no-untyped-def]
        async with semaphore:
            return await job

    return await asyncio.gather(*(one(job) for job in jobs))


async def _until(http: httpx.AsyncClient, waiters: int, timeout: float) -> None:
    """Until the server reports ``waiters`` open long polls."""
    deadline = time.monotonic() + timeout
    while (await http.get("/healthz", timeout=60)).json()["waiters"] < waiters:
        if time.monotonic() > deadline:
            raise TimeoutError(f"fewer than {waiters} waiters after {timeout:.0f} s")
        await asyncio.sleep(0.5)


def _sample(pid: int, seconds: float) -> dict[str, float]:
    ticks = os.sysconf("SC_CLK_TCK")
    before, started = _cpu_ticks(pid), time.monotonic()
    time.sleep(seconds)
    used = (_cpu_ticks(pid) - before) / ticks
    rss_kb = next(
        int(line.split()[1])
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("VmRSS")
    )
    return {
        "cpu_percent": round(100 * used / (time.monotonic() - started), 2),
        "rss_mb": round(rss_kb / 1024, 1),
    }


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


if __name__ == "__main__":
    main()
