"""The validator service: its `PIPELINE` entry's stream, read as its group (FastStream app)."""

from __future__ import annotations

import asyncio

from faststream import FastStream

from services.validator.io import validate_batch
from shared import service
from shared.pipeline import PIPELINE
from shared.settings import Settings
from shared.workers import PartitionWorkers


def spec() -> service.WorkerSpec:
    """The validator stage; its handler needs nothing but the Redis client."""
    return service.WorkerSpec(
        PIPELINE.stage("validator"),
        handler=lambda settings, client, stop: service.no_resources(validate_batch),
    )


async def run_validator(
    settings: Settings, stop: asyncio.Event, consumer: str | None = None
) -> PartitionWorkers:
    """Run the validator until `stop` is set."""
    return await service.run_worker(spec(), settings, stop, consumer)


def build_app(settings: Settings) -> FastStream:
    """The validator as a FastStream app (`runbus run validator`)."""
    return service.build_app(spec(), settings)
