"""A worker's sleep ends at its deadline or when woken, and a cancellation is never lost,
even one that arrives just as it is woken (Python 3.11's ``asyncio.wait_for`` returned the
wake-up then and dropped the cancellation: a stopped server's worker went on claiming)."""

from __future__ import annotations

import asyncio
import time

import pytest

from signoff.worker.wakeups import sleep_until_woken


@pytest.mark.parametrize("turns", [0, 1, 2, 3])
async def test_a_cancellation_that_arrives_with_the_wake_up_still_cancels(turns):
    """Wake the sleeper, let the loop run ``turns`` steps, then cancel: a cancel the task
    accepted (it had not finished) must end it cancelled, never as a normal return."""
    wake = asyncio.Event()
    sleeper = asyncio.create_task(sleep_until_woken(wake, 30))
    await asyncio.sleep(0)  # the sleeper now waits
    wake.set()
    for _ in range(turns):
        await asyncio.sleep(0)
    if sleeper.cancel():
        with pytest.raises(asyncio.CancelledError):
            await sleeper
    else:
        assert not sleeper.cancelled()  # it had already woken and returned


async def test_a_sleep_ends_when_woken_or_at_its_deadline():
    wake = asyncio.Event()
    started = time.monotonic()
    await sleep_until_woken(wake, 0.05)
    assert time.monotonic() - started >= 0.05
    wake.set()
    started = time.monotonic()
    await sleep_until_woken(wake, 30)
    assert time.monotonic() - started < 1
