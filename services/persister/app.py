"""The persister service: its `PIPELINE` entry's stream, read as its group (FastStream app).

The startup hook (`shared.service.build_app`) starts a task that takes the history's writer
lock (`services.history.sole_writer`: a second persister on one SQLite file fails at once with
``history_in_use``), opens the history store (migrating it when ``migrate_on_start``), starts
the dead-letter retention job on that store (`services.persister.retention`, unless
``dead_letter_retention`` is off) and runs a `StreamWorker` whose handler is
`Persister.handle`; the shutdown hook sets the stop event and awaits that task, which finishes
the batch in hand (or gives up retrying an unavailable database, leaving the batch pending),
stops the retention job and closes the store.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import redis.asyncio as aredis
from faststream import FastStream

from services.history import open_store, sole_writer
from services.persister.io import Persister
from services.persister.retention import Retention
from shared import service
from shared.consumer import BatchHandler
from shared.logging import get_logger
from shared.pipeline import PIPELINE
from shared.settings import Settings
from shared.workers import PartitionWorkers

log = get_logger("runbus.persister")


def spec() -> service.WorkerSpec:
    """The persister stage; its handler gives up retrying when `stop` is set."""

    @contextlib.asynccontextmanager
    async def resources(
        settings: Settings, client: aredis.Redis, stop: asyncio.Event
    ) -> AsyncIterator[BatchHandler]:
        # Held until the store is closed: refused now rather than retried like an outage.
        with sole_writer(settings.database_url):
            store = open_store(settings)
            persister = Persister(store, settings, stop)
            job: asyncio.Task[None] | None = None
            try:
                if await persister.start() and settings.dead_letter_retention:
                    job = asyncio.create_task(Retention(client, store, settings).run(stop))
                yield persister.handle
            finally:
                if job is not None:
                    job.cancel()
                    await asyncio.gather(job, return_exceptions=True)
                await store.close()
                log.info(
                    "persister_closed",
                    inserted=persister.inserted,
                    duplicates=persister.duplicates,
                    rejected=persister.rejected,
                    malformed=persister.malformed,
                )

    return service.WorkerSpec(PIPELINE.stage("persister"), handler=resources)


async def run_persister(
    settings: Settings, stop: asyncio.Event, consumer: str | None = None
) -> PartitionWorkers:
    """Run the persister until `stop` is set; returns the finished worker."""
    return await service.run_worker(spec(), settings, stop, consumer)


def build_app(settings: Settings) -> FastStream:
    """The persister as a FastStream app (`runbus run persister`)."""
    return service.build_app(spec(), settings)
