"""Publishing the demo: valid events through the producer, invalid ones raw, at the set rate.

fakeredis is enough: only what is XADDed, and when, is checked here.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import fakeredis
import orjson

from services.demo.io import CHUNK, chunk_size, publish_workload
from services.demo.logic import workload
from shared.producer import Outgoing
from shared.settings import Settings

SETTINGS = Settings(namespace="demo-unit", _env_file=None)  # type: ignore[call-arg]


async def test_everything_reaches_the_incoming_stream() -> None:
    client = fakeredis.FakeAsyncRedis()
    items = workload(2, 30, 0.2, seed=4, now=datetime(2026, 1, 1, tzinfo=UTC))
    result = await publish_workload(client, SETTINGS, items)
    entries = await client.xrange(SETTINGS.names.events)
    assert len(entries) == len(items) == result.valid + result.invalid
    assert result.invalid == sum(1 for i in items if i.raw is not None)
    bodies = [fields[b"__data__"] for _, fields in entries]
    # valid events went through the producer: each got an event id
    ids = [orjson.loads(b).get("event_id") for b in bodies if b.startswith(b'{"dialect"')]
    assert len(ids) == result.valid and all(ids)


async def test_the_rate_is_respected() -> None:
    client = fakeredis.FakeAsyncRedis()
    items = workload(1, 40, 0.0, seed=1)
    started = time.monotonic()
    await publish_workload(client, SETTINGS, items, rate=200)
    assert time.monotonic() - started >= 40 / 200 * 0.9


def test_chunks_are_a_tenth_of_a_second_of_traffic() -> None:
    assert chunk_size(0) == CHUNK
    assert chunk_size(5) == 1
    assert chunk_size(1000) == 100
    assert chunk_size(1e9) == CHUNK


async def test_with_partitions_every_entry_goes_to_its_runs_partition() -> None:
    # given four partitions and a workload with invalid entries (some without a run id)
    settings = Settings(namespace="demo-unit", partitions=4, _env_file=None)  # type: ignore[call-arg]
    names = settings.names
    client = fakeredis.FakeAsyncRedis()
    items = workload(2, 40, 0.3, seed=5, now=datetime(2026, 1, 1, tzinfo=UTC))
    # when the demo publishes it
    await publish_workload(client, settings, items)
    # then each entry is on the stream of the run inside it (partition 0 without one)
    total = 0
    for partition in names.all_partitions:
        for _, fields in await client.xrange(partition.events):
            assert Outgoing.of_body(fields[b"__data__"]).stream(names) == partition.events
            total += 1
    assert total == len(items)
    assert len([p for p in names.all_partitions if await client.xlen(p.events)]) > 1
