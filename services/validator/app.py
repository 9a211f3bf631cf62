"""The validator service: reads the incoming stream as group `validator` (FastStream app)."""

from __future__ import annotations

import asyncio

from faststream import FastStream

from services.validator.io import validate_batch
from shared import service
from shared.consumer import StreamWorker
from shared.names import VALIDATOR_GROUP
from shared.settings import Settings

SPEC = service.WorkerSpec(
    stage="validator",
    stream=lambda s: s.names.events,
    group=VALIDATOR_GROUP,
    handler=lambda settings, client, stop: service.no_resources(validate_batch),
)


async def run_validator(
    settings: Settings, stop: asyncio.Event, consumer: str | None = None
) -> StreamWorker:
    """Run the validator until `stop` is set."""
    return await service.run_worker(SPEC, settings, stop, consumer)


def build_app(settings: Settings) -> FastStream:
    """The validator as a FastStream app (`runbus run validator`)."""
    return service.build_app(SPEC, settings)
