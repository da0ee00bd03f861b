"""Long-poll waiters: pipelines blocked in ``GET /v1/approvals/{id}/wait``.

A waiter is one asyncio future in a dict, so ten thousand of them cost sockets and a little
memory, not threads or database queries. Settlement notifications (``Database.listen``) wake
them from any thread or process. As a safety net against a lost notification, a sweep asks the
database once every few seconds which of the awaited approvals settled: one query for all of
them, and none while nobody waits.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

SWEEP_CHUNK = 500


class Waiters:
    def __init__(self) -> None:
        self._waiting: dict[str, set[asyncio.Future[None]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def __len__(self) -> int:
        return sum(len(futures) for futures in self._waiting.values())

    def on_notification(self, topic: str, key: str) -> None:
        """Called from any thread."""
        if self._loop is not None and topic in ("approval", "*"):
            self._loop.call_soon_threadsafe(self._wake, None if topic == "*" else key)

    async def wait(
        self, approval_id: str, timeout: float, still_pending: Callable[[], Awaitable[bool]]
    ) -> bool:
        """Wait until the approval settles or ``timeout`` passes; False if it was not pending.

        ``still_pending`` runs after the waiter is registered, so a settlement that commits
        between that read and the wait still wakes it.
        """
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(approval_id, set()).add(future)
        try:
            if not await still_pending():
                return False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):  # not wait_for: see worker/wakeups.py
                    await future
            return True
        finally:
            futures = self._waiting.get(approval_id)
            if futures is not None:
                futures.discard(future)
                if not futures:
                    del self._waiting[approval_id]

    async def sweep_forever(
        self, settled_among: Callable[[list[str]], Awaitable[list[str]]], every: float
    ) -> None:
        while True:
            await asyncio.sleep(every)
            ids = list(self._waiting)
            for start in range(0, len(ids), SWEEP_CHUNK):
                for approval_id in await settled_among(ids[start : start + SWEEP_CHUNK]):
                    self._wake(approval_id)

    def _wake(self, approval_id: str | None) -> None:
        keys = list(self._waiting) if approval_id is None else [approval_id]
        for key in keys:
            for future in self._waiting.get(key, ()):
                if not future.done():
                    future.set_result(None)
