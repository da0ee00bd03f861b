"""A per-address limit on attempts at guessable things: passwords, codes, reset requests."""

from __future__ import annotations

import threading
import time
from collections import deque

from signoff import errors


class Throttle:
    """At most ``per_minute`` attempts per client address in any sliding minute, in this
    process. It slows down guessing from one address; the per-account lockout in the database
    is what stops guessing from many."""

    MAX_ADDRESSES = 100_000

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, address: str | None) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._seen) >= self.MAX_ADDRESSES:
                self._seen.clear()
            recent = self._seen.setdefault(address or "?", deque())
            while recent and recent[0] <= now - 60:
                recent.popleft()
            if len(recent) >= self.per_minute:
                retry = max(1, int(recent[0] + 60 - now) + 1)
                raise errors.TooManyAttempts(
                    f"too many attempts from your address; wait {retry} seconds",
                    retry_after=retry,
                )
            recent.append(now)
