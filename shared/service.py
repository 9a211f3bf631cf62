"""Hosting a stream worker as a FastStream app: resources open in startup hooks, drain on stop.

Every stage (validator, persister, coach) is a `WorkerSpec`: which stream and group it reads,
how to open its resources, and the batch handler built from them. `build_app` turns a spec into
a FastStream app (FastStream owns the process lifecycle and signals); `run_worker` runs the same
spec without FastStream, for tests and the in-process supervisor.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

import redis.asyncio as aredis
from faststream import FastStream
from faststream.redis import RedisBroker

from shared.connections import async_redis
from shared.consumer import BatchHandler, StreamWorker
from shared.logging import get_logger
from shared.settings import Settings

log = get_logger("runbus.service")

#: Opens the stage's resources and yields its batch handler; closes them on exit. The stop
#: event lets a handler that retries internally (the persister, database down) give up.
HandlerFactory = Callable[
    [Settings, aredis.Redis, asyncio.Event], AbstractAsyncContextManager[BatchHandler]
]


@dataclass(frozen=True)
class WorkerSpec:
    """One pipeline stage: what it reads and how it handles a batch."""

    stage: str
    stream: Callable[[Settings], str]
    group: str
    handler: HandlerFactory


async def run_worker(
    spec: WorkerSpec, settings: Settings, stop: asyncio.Event, consumer: str | None = None
) -> StreamWorker:
    """Run the stage until `stop` is set; returns the finished worker (for its counters)."""
    client = async_redis(settings)
    try:
        async with spec.handler(settings, client, stop) as handler:
            worker = StreamWorker(
                client,
                settings,
                stream=spec.stream(settings),
                group=spec.group,
                stage=spec.stage,
                handler=handler,
                consumer=consumer,
            )
            await worker.run(stop)
            return worker
    finally:
        await client.aclose()


def build_app(spec: WorkerSpec, settings: Settings) -> FastStream:
    """A FastStream app whose startup hook starts the worker and whose shutdown drains it."""
    broker = RedisBroker(settings.redis_url)
    stop = asyncio.Event()
    tasks: list[asyncio.Task[StreamWorker]] = []

    async def start() -> None:
        stop.clear()
        tasks.append(asyncio.create_task(run_worker(spec, settings, stop)))

    async def drain() -> None:
        stop.set()
        for task in tasks:
            with contextlib.suppress(Exception):
                await task
        log.info("service_drained", stage=spec.stage)

    return FastStream(broker, after_startup=[start], on_shutdown=[drain])


@contextlib.asynccontextmanager
async def no_resources(handler: BatchHandler) -> AsyncIterator[BatchHandler]:
    """For stages whose handler needs nothing but the Redis client."""
    yield handler
