"""A real HTTP webhook receiver on loopback, for callback tests.

It records every request (headers and body) and can be told to fail the next N requests or to
answer slowly, like a receiver that is down for a while. It also counts the requests it is
answering at once, in all and per ``webhook-id``: one delivery sent twice at the same time
shows there.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float
    path: str = "/hook"

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


class Receiver:
    def __init__(self, port: int = 0) -> None:
        self.received: list[Received] = []
        self.fail_next = 0
        self.delay = 0.0
        self.status = 204  # of a success; a service's API may answer 200 or 201 with a body
        self.answer = b""
        self.started = 0  # requests that arrived, finished or not
        self.in_flight: Counter[str] = Counter()  # requests being answered, by webhook-id
        self.most_in_flight = 0  # the most requests answered at once
        self.most_in_flight_per_id = 0  # the most requests for one webhook-id answered at once
        self._lock = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = self.rfile.read(length)
                if len(body) < length:
                    return  # the sender died mid-request: nothing was delivered
                webhook_id = self.headers.get("webhook-id", "")
                with receiver._lock:
                    receiver.started += 1
                    receiver._note_arrival(webhook_id)
                    receiver._lock.notify_all()
                try:
                    time.sleep(receiver.delay)
                    with receiver._lock:
                        failing = receiver.fail_next > 0
                        receiver.fail_next -= 1 if failing else 0
                        if not failing:
                            receiver.received.append(
                                Received(
                                    dict(self.headers.items()), body, time.monotonic(), self.path
                                )
                            )
                        receiver._lock.notify_all()
                    answer = b"" if failing else receiver.answer
                    self.send_response(503 if failing else receiver.status)
                    if answer:
                        self.send_header("content-type", "application/json")
                        self.send_header("content-length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                finally:  # also when the sender is gone (killed) and the answer fails
                    with receiver._lock:
                        receiver.in_flight[webhook_id] -= 1

            def log_message(self, *_args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _note_arrival(self, webhook_id: str) -> None:
        self.in_flight[webhook_id] += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight.total())
        self.most_in_flight_per_id = max(self.most_in_flight_per_id, self.in_flight[webhook_id])

    def wait_for(self, count: int, timeout: float = 15.0) -> list[Received]:
        """Block until ``count`` requests arrived; fail the test if they do not in time."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self.received) >= count, timeout):
                raise AssertionError(
                    f"expected {count} webhooks, got {len(self.received)} in {timeout}s"
                )
            return list(self.received)

    def wait_started(self, count: int, timeout: float = 15.0) -> None:
        with self._lock:
            if not self._lock.wait_for(lambda: self.started >= count, timeout):
                raise AssertionError(f"expected {count} webhook attempts, saw {self.started}")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
