"""The dispatcher: claims due deliveries and sends each in its own task.

Up to ``concurrency`` sends run at once; a slow or dead receiver holds only its own slots and
never the others' deliveries or the decision path. Claims are leases (see
``domain/deliveries.py``), so a dispatcher killed mid-send loses nothing: its deliveries fall
due again when the lease runs out, and a receiver sees them at least once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import assert_never

import httpx

from signoff.domain import apprise_urls, destinations
from signoff.domain.deliveries import AttemptResult, Backoff, Delivery, TargetKind
from signoff.services import deliveries
from signoff.store.engine import Database
from signoff.worker.senders import apprise, email, smtp, webhook
from signoff.worker.senders import slack as slack_sender
from signoff.worker.wakeups import sleep_until_woken

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(
        self,
        db: Database,
        *,
        webhook_secrets: tuple[str, ...],
        secret_key: str,
        smtp_config: smtp.SmtpConfig,
        public_url: str,
        allowed_networks: Collection[destinations.Network],
        backoff: Backoff,
        timeout: float,
        concurrency: int,
        max_sleep: float,
        slack: slack_sender.SlackSender | None = None,
    ) -> None:
        self.db = db
        self.slack = slack  # None: Slack is not configured
        self.webhook_secrets = webhook_secrets  # the current one first (webhook.signed_request)
        self.secret_key = secret_key
        self.mail = smtp.Pool(smtp_config, max_idle=concurrency)
        self.public_url = public_url
        self.allowed_networks = allowed_networks
        self.backoff = backoff
        self.timeout = timeout
        self.concurrency = concurrency
        self.max_sleep = max_sleep
        # A send is cut off after ``timeout``; the lease outlasts it with room to record.
        self.lease = timedelta(seconds=timeout * 2 + 5)
        self.wake = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        limits = httpx.Limits(
            max_connections=self.concurrency, max_keepalive_connections=self.concurrency
        )
        async with contextlib.AsyncExitStack() as stack:
            http = await stack.enter_async_context(
                httpx.AsyncClient(timeout=self.timeout, limits=limits)
            )
            if self.slack is not None:
                await stack.enter_async_context(self.slack)
            try:
                while True:
                    await self._step(http)
            finally:
                for task in self._inflight:
                    task.cancel()
                self.mail.close()

    async def _step(self, http: httpx.AsyncClient) -> None:
        self.wake.clear()
        free = self.concurrency - len(self._inflight)
        claimed = (
            await asyncio.to_thread(deliveries.claim_due, self.db, lease=self.lease, limit=free)
            if free > 0
            else []
        )
        for delivery in claimed:
            task = asyncio.create_task(self._deliver(http, delivery))
            self._inflight.add(task)
            task.add_done_callback(self._done)
        if claimed and len(claimed) == free:
            await self._sleep(self.max_sleep)  # full: a finishing send wakes us
        elif not claimed:
            await self._sleep(await self._seconds_until_due())

    async def _deliver(self, http: httpx.AsyncClient, delivery: Delivery) -> None:
        result = await self._send(http, delivery)
        if not result.ok:
            where = _shown(delivery)
            log.info("delivery %s to %s failed: %s", delivery.id, where, result.error)
        await asyncio.to_thread(deliveries.record, self.db, [delivery], [result], self.backoff)

    async def _send(self, http: httpx.AsyncClient, delivery: Delivery) -> AttemptResult:
        match delivery.target_kind:
            case TargetKind.EMAIL:
                return await email.send(
                    delivery,
                    self.mail,
                    public_url=self.public_url,
                    secret_key=self.secret_key,
                    timeout=self.timeout,
                )
            case TargetKind.CALLBACK | TargetKind.WEBHOOK:
                return await webhook.send(
                    http, delivery, self.webhook_secrets, self.timeout, self.allowed_networks
                )
            case TargetKind.SLACK:
                if self.slack is None:
                    return slack_sender.not_configured(delivery)
                return await self.slack.send(delivery)
            case TargetKind.APPRISE:
                return await apprise.send(
                    delivery,
                    public_url=self.public_url,
                    timeout=self.timeout,
                    allowed=self.allowed_networks,
                )
            case unknown:
                assert_never(unknown)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # The attempt could not be recorded (database down): the lease brings it back.
            log.error("delivery task failed", exc_info=task.exception())
        self.wake.set()

    async def _seconds_until_due(self) -> float:
        next_at = await asyncio.to_thread(deliveries.next_attempt_at, self.db)
        if next_at is None:
            return self.max_sleep
        return min(self.max_sleep, max(0.0, (next_at - datetime.now(UTC)).total_seconds()))

    async def _sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        await sleep_until_woken(self.wake, seconds)


def _shown(delivery: Delivery) -> str:
    """Where a delivery goes, fit for a log: URLs may hold tokens."""
    if delivery.target_kind in (TargetKind.EMAIL, TargetKind.SLACK):
        return delivery.target
    if delivery.target_kind is TargetKind.APPRISE:
        return apprise_urls.redacted(delivery.target)
    return destinations.redacted(delivery.target)
