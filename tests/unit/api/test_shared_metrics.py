"""shared.metrics: a batch's counts reach the stage hash in one write; failures never raise.

fakeredis is enough here: this is the pure accumulate-and-flush logic, not delivery.
"""

from __future__ import annotations

import fakeredis
import pytest
import redis.asyncio as aredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from shared import metrics
from shared.names import Names

NAMES = Names("unit")


async def test_a_scope_flushes_what_the_batch_noted() -> None:
    client = fakeredis.FakeAsyncRedis()
    async with metrics.batch_scope(client, NAMES, "validator", 10):
        metrics.note("accepted", 8)
        metrics.note_dead_letter(["invalid_stage:foo", "invalid_severity:bar"])
        metrics.note_dead_letter(["invalid_stage:baz"])
        metrics.note("nothing", 0)
    stage = (await metrics.read_stage_metrics(client, NAMES, ["validator", "coach"]))[0]
    assert stage.batches == 1 and stage.entries == 10
    assert stage.counters == {"accepted": 8, "dead_lettered": 2}
    assert stage.reasons == {"invalid_stage": 2, "invalid_severity": 1}
    assert sum(stage.buckets.values()) == 1 and stage.seconds_sum >= 0


async def test_nothing_is_written_when_the_batch_fails() -> None:
    client = fakeredis.FakeAsyncRedis()
    with pytest.raises(RuntimeError):
        async with metrics.batch_scope(client, NAMES, "persister", 5):
            metrics.note("persisted", 5)
            raise RuntimeError("handler failed")
    assert await client.hgetall(metrics.metrics_key(NAMES, "persister")) == {}


def test_notes_outside_a_scope_are_ignored() -> None:
    metrics.note("accepted", 3)
    metrics.note_dead_letter(["x"])


async def test_an_unreachable_redis_does_not_raise() -> None:
    # port 1 on loopback refuses at once; no retries
    client = aredis.Redis(port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    await metrics.record_batch(client, NAMES, "coach", entries=1, seconds=0.1)
    await client.aclose()
