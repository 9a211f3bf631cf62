"""A validator that dies on one entry: test-only, run as a process by the poison fault test.

``python -m tests.faults.crashing_validator`` runs the real validator handler through the real
`StreamWorker`, except that a batch holding an entry whose bytes contain
``RUNBUS_FAULT_POISON`` makes the process exit at once (``os._exit(1)``: no cleanup, no ack),
the way a segfaulting decoder or an OOM kill would. Nothing in production code knows about it.
SIGTERM/SIGINT drain it like the real service.
"""

from __future__ import annotations

import asyncio
import os
import signal

from services.validator.io import validate_batch
from shared.connections import async_redis
from shared.consumer import BatchContext, Entry, StreamWorker
from shared.logging import configure_logging
from shared.names import VALIDATOR_GROUP
from shared.settings import Settings


async def main() -> None:
    """Run until SIGTERM/SIGINT, or until the poison entry kills the process."""
    settings = Settings()
    configure_logging(settings)
    poison = os.environ["RUNBUS_FAULT_POISON"].encode()

    async def handler(batch: list[Entry], ctx: BatchContext) -> None:
        if any(poison in (entry.data or b"") for entry in batch):
            os._exit(1)
        await validate_batch(batch, ctx)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    client = async_redis(settings)
    try:
        worker = StreamWorker(
            client, settings, stream=settings.names.events, group=VALIDATOR_GROUP,
            stage="validator", handler=handler,
        )  # fmt: skip
        await worker.run(stop)
    finally:
        await client.aclose()


if __name__ == "__main__":
    asyncio.run(main())
