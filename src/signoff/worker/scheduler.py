"""The scheduler: settles approvals whose deadline or heartbeat deadline has passed.

No timer per approval: it asks the database for the earliest pending deadline (an index
lookup), sleeps until then, and is woken early when a new approval might be due sooner.
Several schedulers may run at once: each settlement re-checks its approval under lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from signoff.domain.principals import system_context
from signoff.services import approvals
from signoff.store.engine import Database

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(self, db: Database, *, max_sleep: float) -> None:
        self.db = db
        self.max_sleep = max_sleep
        self.wake = asyncio.Event()
        self.ctx = system_context("scheduler")

    async def run(self) -> None:
        while True:
            self.wake.clear()
            settled = await asyncio.to_thread(approvals.expire_due, self.db, self.ctx)
            if settled:
                log.info("settled %d approvals at their deadline", settled)
                continue
            next_at = await asyncio.to_thread(approvals.next_due_at, self.db)
            seconds = self.max_sleep
            if next_at is not None:
                seconds = min(seconds, (next_at - datetime.now(UTC)).total_seconds())
            if seconds > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), seconds)
