"""Publishing the demo workload: valid events through the producer client, invalid ones raw.

Both go to the partition of their run (`Outgoing.stream`): the raw ones by the run id inside
them, when they have one, as a producer following the wire format would.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import redis.asyncio as aredis

from services.demo.logic import Item
from shared.producer import Outgoing, Producer
from shared.settings import Settings
from shared.wire import DATA_FIELD

#: Entries per pipeline when no rate is set.
CHUNK = 500


@dataclass
class DemoResult:
    """What the demo published."""

    valid: int = 0
    invalid: int = 0
    seconds: float = 0.0
    projects: list[int] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)


def chunk_size(rate: float) -> int:
    """Entries per pipeline: a tenth of a second's worth at `rate`, CHUNK when unlimited."""
    if rate <= 0:
        return CHUNK
    return max(1, min(CHUNK, int(rate / 10)))


async def publish_workload(
    client: aredis.Redis, settings: Settings, items: list[Item], rate: float = 0.0
) -> DemoResult:
    """Publish `items` in order, at most `rate` entries a second (0: as fast as possible).

    Valid events go through `Producer` with client-side validation (a bug in the demo would
    raise here, not dead-letter); invalid ones are XADDed as they are, as a careless producer
    would, so the validator dead-letters them.
    """
    producer = Producer(client, settings.names, settings.taxonomy)
    result = DemoResult()
    size = chunk_size(rate)
    started = time.monotonic()
    for offset in range(0, len(items), size):
        chunk = items[offset : offset + size]
        await _publish_chunk(client, settings, producer, chunk, result)
        if rate > 0:  # pace: entry n is due at n / rate seconds
            due = started + (offset + len(chunk)) / rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
    result.seconds = time.monotonic() - started
    return result


async def _publish_chunk(
    client: aredis.Redis,
    settings: Settings,
    producer: Producer,
    chunk: list[Item],
    result: DemoResult,
) -> None:
    events = [item.event for item in chunk if item.event is not None]
    if events:
        await producer.publish_many(events)
    raws = [item.raw for item in chunk if item.raw is not None]
    if raws:
        async with client.pipeline(transaction=False) as pipe:
            for raw in raws:
                pipe.xadd(Outgoing.of_body(raw).stream(settings.names), {DATA_FIELD: raw})
            await pipe.execute()
    result.valid += len(events)
    result.invalid += len(raws)
