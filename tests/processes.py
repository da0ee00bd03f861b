"""signoff as a real OS process, for tests that kill it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.receivers import free_port

# The test receivers listen on loopback, which signoff refuses to send to by default.
LOCAL_RECEIVERS = {"SIGNOFF_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8,::1/128"}


class ServerProcess:
    """``python -m signoff server run`` on a fixed free port; survives restarts."""

    def __init__(self, env: dict[str, str], log: Path, *, args: tuple[str, ...] = ()) -> None:
        self.args = args
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = (
            os.environ
            | env
            | {"SIGNOFF_PUBLIC_URL": self.url, "SIGNOFF_LOG_LEVEL": "warning", **LOCAL_RECEIVERS}
        )
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "signoff",
                    "server",
                    "run",
                    "--port",
                    str(self.port),
                    *self.args,
                ],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError("server did not become healthy")

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill9()


class WorkerProcess:
    """``python -m signoff worker``."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = os.environ | env | {"SIGNOFF_LOG_LEVEL": "warning", **LOCAL_RECEIVERS}
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "signoff", "worker"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
