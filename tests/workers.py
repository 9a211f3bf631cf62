"""Running a real `StreamWorker` in a test until a condition holds (polled, with a deadline)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from shared.consumer import StreamWorker

POLL_S = 0.02


async def run_until(worker: StreamWorker, done: Callable[[], bool], timeout: float = 20) -> None:
    """Run `worker` until `done()` is true, then stop it; fail if it stops or time runs out."""
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    deadline = time.monotonic() + timeout
    try:
        while not done():
            assert not task.done(), "the worker stopped by itself"
            assert time.monotonic() < deadline, "condition not met in time"
            await asyncio.sleep(POLL_S)
    finally:
        stop.set()
        await task
