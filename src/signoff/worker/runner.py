"""Runs the dispatcher and scheduler together, routes notifications to them, and sweeps ended
sessions away once an hour."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from signoff.domain.deliveries import Backoff
from signoff.services import accounts, approvals
from signoff.services.server_secrets import Keys
from signoff.settings import Settings
from signoff.store.engine import Database
from signoff.worker.dispatcher import Dispatcher
from signoff.worker.scheduler import Scheduler
from signoff.worker.senders import smtp

log = logging.getLogger(__name__)
RESTART_DELAY = 1.0
SWEEP_INTERVAL = 3600.0  # seconds between sweeps of ended sessions


class Worker:
    def __init__(self, db: Database, settings: Settings, keys: Keys) -> None:
        self.dispatcher = Dispatcher(
            db,
            webhook_secrets=keys.webhook_signing_secrets,
            secret_key=keys.secret_key,
            smtp_config=smtp.SmtpConfig.from_settings(settings),
            public_url=settings.public_url,
            allowed_networks=settings.webhook_allowed_networks,
            backoff=Backoff(
                base_seconds=settings.delivery_backoff_base_seconds,
                cap_seconds=settings.delivery_backoff_cap_seconds,
                max_age=timedelta(seconds=settings.delivery_max_age_seconds),
            ),
            timeout=settings.delivery_timeout_seconds,
            concurrency=settings.delivery_concurrency,
            max_sleep=settings.worker_max_sleep_seconds,
        )
        self.scheduler = Scheduler(db, max_sleep=settings.worker_max_sleep_seconds)
        self.db = db
        self.rules = accounts.Rules.from_settings(settings, keys.secret_key)
        self._loop: asyncio.AbstractEventLoop | None = None

    def on_notification(self, topic: str, key: str) -> None:
        """Called from any thread."""
        if self._loop is None:
            return
        if topic in (approvals.DELIVERY, "*"):
            self._loop.call_soon_threadsafe(self.dispatcher.wake.set)
        if topic == "*" or (topic == approvals.SCHEDULE and self.scheduler.wakes_for(key)):
            self._loop.call_soon_threadsafe(self.scheduler.wake.set)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        async with asyncio.TaskGroup() as group:
            group.create_task(_forever("dispatcher", self.dispatcher.run))
            group.create_task(_forever("scheduler", self.scheduler.run))
            group.create_task(_forever("session sweep", self._sweep_sessions))

    async def _sweep_sessions(self) -> None:
        """Sessions end by time without anyone touching their rows; forget them here. Workers
        sweeping at the same time delete the same rows, harmlessly."""
        while True:
            swept = await asyncio.to_thread(accounts.sweep_ended_sessions, self.db, self.rules)
            if swept:
                log.info("forgot %d ended sessions", swept)
            await asyncio.sleep(SWEEP_INTERVAL)


async def _forever(name: str, loop: Callable[[], Awaitable[None]]) -> None:
    """Keep a loop running through failures (a database restart, say): the worker's one place
    that catches everything, because giving up would stop every delivery."""
    while True:
        try:
            await loop()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; restarting in %.0fs", name, RESTART_DELAY)
            await asyncio.sleep(RESTART_DELAY)


async def run_standalone(settings: Settings) -> None:
    """``signoff worker``: a worker process of its own, sharing the database with servers."""
    from signoff.services import server

    db, keys = await asyncio.to_thread(server.open_database, settings)
    worker = Worker(db, settings, keys)
    listener = asyncio.create_task(db.listen(worker.on_notification))
    try:
        await worker.run()
    finally:
        listener.cancel()
        db.dispose()
