"""How the worker's loops sleep: until a deadline, or until something wakes them."""

from __future__ import annotations

import asyncio
import contextlib


async def sleep_until_woken(wake: asyncio.Event, seconds: float) -> None:
    """Return after ``seconds`` or once ``wake`` is set, whichever is first. Written with
    ``asyncio.timeout``: on Python 3.11 ``asyncio.wait_for`` drops a cancellation that
    arrives as the wait completes, and a worker that missed its cancellation never stopped."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await wake.wait()
