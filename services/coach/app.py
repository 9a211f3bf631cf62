"""The coach service: its `PIPELINE` entry's stream, read as its group (`runbus run coach`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import redis.asyncio as aredis
from faststream import FastStream

from services.coach.handler import CoachHandler, CoachStats
from services.coach.io import CoachStore
from shared import service
from shared.consumer import BatchHandler
from shared.pipeline import PIPELINE
from shared.settings import Settings
from shared.workers import PartitionWorkers


def spec(stats: CoachStats | None = None) -> service.WorkerSpec:
    """The coach stage; `stats` (optional) receives the handler's counters."""

    @contextlib.asynccontextmanager
    async def handler(
        settings: Settings, client: aredis.Redis, stop: asyncio.Event
    ) -> AsyncIterator[BatchHandler]:
        store = CoachStore(client, settings.names)
        yield CoachHandler(store, settings.taxonomy.version, stats)

    return service.WorkerSpec(PIPELINE.stage("coach"), handler=handler)


async def run_coach(
    settings: Settings,
    stop: asyncio.Event,
    consumer: str | None = None,
    stats: CoachStats | None = None,
) -> PartitionWorkers:
    """Run the coach until `stop` is set; returns the finished worker (for its counters)."""
    return await service.run_worker(spec(stats), settings, stop, consumer)


def build_app(settings: Settings) -> FastStream:
    """The coach as a FastStream app (`runbus run coach`)."""
    return service.build_app(spec(), settings)
