"""Hosting a stream worker as a FastStream app: resources open in startup hooks, drain on stop.

Every stage of `shared.pipeline.PIPELINE` is a `WorkerSpec`: its entry there (which stream it
reads, as which group), how to open its resources, and the batch handler built from them. A
stage process reads that stream in every partition (`shared.workers.PartitionWorkers`).
`build_app` turns a spec into a FastStream app (FastStream owns the process lifecycle and
signals); `run_worker` runs the same spec without FastStream, for tests and the in-process
supervisor.

A worker that ends on its own (an exception, an unusable database at start) is logged with its
error and stops the app, and `WorkerFailed` leaves `FastStream.run`: the process exits non-zero,
so whatever runs it (the supervisor of `runbus run all`, compose's restart policy) restarts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

import redis.asyncio as aredis
from faststream import FastStream
from faststream.redis import RedisBroker

from shared.connections import async_redis
from shared.consumer import BatchHandler
from shared.logging import get_logger, library_logger
from shared.pipeline import Stage
from shared.settings import Settings
from shared.workers import PartitionWorkers

log = get_logger("runbus.service")

#: Opens the stage's resources and yields its batch handler; closes them on exit. The stop
#: event lets a handler that retries internally (the persister, database down) give up.
Task = asyncio.Task[PartitionWorkers]
HandlerFactory = Callable[
    [Settings, aredis.Redis, asyncio.Event], AbstractAsyncContextManager[BatchHandler]
]


@dataclass(frozen=True)
class WorkerSpec:
    """One pipeline stage: its `PIPELINE` entry (what it reads, as which group) and its handler."""

    stage: Stage
    handler: HandlerFactory

    @property
    def name(self) -> str:
        """The stage's name: its consumer names, its metrics, its log lines."""
        return self.stage.name

    @property
    def group(self) -> str:
        """The consumer group the stage reads as."""
        return self.stage.group

    def streams(self, settings: Settings) -> tuple[str, ...]:
        """The streams the stage reads (one per partition), under the settings' namespace."""
        return settings.names.streams(self.stage.reads)


async def run_worker(
    spec: WorkerSpec, settings: Settings, stop: asyncio.Event, consumer: str | None = None
) -> PartitionWorkers:
    """Run the stage on every partition until `stop` is set; returns the finished workers.

    One client (one connection pool) and one handler serve every partition's worker.
    """
    client = async_redis(settings)
    try:
        async with spec.handler(settings, client, stop) as handler:
            # What start-up allocated (modules, models, the handler) lives as long as the
            # process: out of the cyclic GC's generations, a full collection between two
            # batches walks only what the batches left, not every imported module.
            gc.freeze()
            workers = PartitionWorkers(
                client,
                settings,
                reads=spec.stage.reads,
                group=spec.group,
                stage=spec.name,
                handler=handler,
                consumer=consumer,
            )
            await workers.run(stop)
            return workers
    finally:
        await client.aclose()


class WorkerFailed(RuntimeError):
    """The stage's worker ended without being asked to (its error is logged)."""


def _watch(spec: WorkerSpec, stop: asyncio.Event, app: FastStream) -> Callable[[Task], None]:
    """A done-callback for the worker task: an end nobody asked for is logged and stops `app`."""

    def done(task: Task) -> None:
        if stop.is_set() or task.cancelled():
            return
        error = task.exception()
        if error is None:
            log.error("worker_ended_unexpectedly", stage=spec.name)
        else:
            log.error("worker_failed", stage=spec.name, error=repr(error), exc_info=error)
        app.exit()

    return done


def build_app(spec: WorkerSpec, settings: Settings) -> FastStream:
    """A FastStream app whose startup hook starts the worker and whose shutdown drains it.

    `app.run()` raises `WorkerFailed` when the worker ended on its own.
    """
    broker = RedisBroker(settings.redis_url, logger=library_logger("faststream.access.redis"))
    stop = asyncio.Event()
    tasks: list[Task] = []
    ended_alone: list[Task] = []
    app = FastStream(broker, logger=library_logger("faststream"))

    async def start() -> None:
        stop.clear()
        task = asyncio.create_task(run_worker(spec, settings, stop))
        task.add_done_callback(_watch(spec, stop, app))
        tasks.append(task)

    async def drain() -> None:
        ended_alone.extend(task for task in tasks if task.done())
        stop.set()
        for task in tasks:
            with contextlib.suppress(Exception):  # a failure is logged by the watch
                await task
        log.info("service_drained", stage=spec.name)

    async def report() -> None:  # after the broker stopped: the exit code is all that is left
        if ended_alone:
            raise WorkerFailed(spec.name)

    app.after_startup(start)
    app.on_shutdown(drain)
    app.after_shutdown(report)
    return app


@contextlib.asynccontextmanager
async def no_resources(handler: BatchHandler) -> AsyncIterator[BatchHandler]:
    """For stages whose handler needs nothing but the Redis client."""
    yield handler
