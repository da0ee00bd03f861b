"""The scheduler: settles approvals whose deadline or heartbeat deadline has passed, and fires
their reminders and escalations when due.

No timer in memory per approval: it asks the database for the earliest pending deadline or
scheduled reminder or escalation (two index lookups) and sleeps until then. A new approval
wakes it early only when it is due before that, so a stream of creates costs the scheduler no
queries. Several schedulers may run at once: each settlement and each timer re-checks its
approval under lock.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time

from signoff.domain.principals import system_context
from signoff.services import approval_settlement, reminders
from signoff.store.engine import Database
from signoff.worker.wakeups import sleep_until_woken

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(self, db: Database, *, max_sleep: float) -> None:
        self.db = db
        self.max_sleep = max_sleep
        self.wake = asyncio.Event()
        self.ctx = system_context("scheduler")
        self._lock = threading.Lock()
        self._looking = False
        self._noticed = math.inf  # earliest due time announced while looking (epoch seconds)
        self._wakes_at = math.inf  # when the current sleep ends (epoch seconds)

    def wakes_for(self, due_at: str) -> bool:
        """Whether an approval due at ``due_at`` (epoch seconds; its deadline or its first
        timer, whichever is sooner) must wake the scheduler early.
        Called from any thread. While the scheduler is looking, the time is kept for the sleep
        that follows instead: the look may or may not have seen that approval."""
        try:
            due = float(due_at)
        except ValueError:
            return True
        with self._lock:
            if self._looking:
                self._noticed = min(self._noticed, due)
                return False
            return due < self._wakes_at

    async def run(self) -> None:
        while True:
            self.wake.clear()
            with self._lock:
                self._looking, self._noticed = True, math.inf
            # Deadlines first: a reminder of an approval that is past its deadline (no
            # scheduler ran for a while) is skipped, not sent.
            settled = await asyncio.to_thread(approval_settlement.expire_due, self.db, self.ctx)
            fired = await asyncio.to_thread(reminders.fire_due, self.db, self.ctx)
            next_at = None
            if not settled and not fired:
                next_at = await asyncio.to_thread(approval_settlement.next_due_at, self.db)
            now = time.time()
            with self._lock:
                self._looking = False
                candidates = [self._noticed, now + self.max_sleep]
                if next_at is not None:
                    candidates.append(next_at.timestamp())
                self._wakes_at = now if settled or fired else min(candidates)
            if fired:
                log.info("fired %d reminders and escalations", fired)
            if settled:
                log.info("settled %d approvals at their deadline", settled)
            if settled or fired:
                continue
            seconds = self._wakes_at - now
            if seconds > 0:
                await sleep_until_woken(self.wake, seconds)
