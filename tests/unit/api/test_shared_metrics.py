"""shared.metrics: a batch's counts reach the stage hash in one write; failures never raise.

fakeredis is enough here: this is the pure accumulate-and-flush logic, not delivery (the
worker driving the middleware is tested against real Redis in tests/integration/consumer).
"""

from __future__ import annotations

import fakeredis
import redis.asyncio as aredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from shared import metrics
from shared.consumer import BatchContext, BatchDone, Entry
from shared.names import Names
from shared.settings import Settings

NAMES = Names("unit")
ENTRIES = [Entry(f"{i}-0", {b"__data__": b"{}"}, 1) for i in range(10)]


def context(client: aredis.Redis, stage: str) -> BatchContext:
    settings = Settings(namespace=NAMES.namespace, _env_file=None)  # type: ignore[call-arg]
    return BatchContext(
        client, settings, NAMES.events, "g", "c", stage, mover=None, partition=NAMES.partition(0)
    )


async def test_the_middleware_flushes_what_the_batch_reported() -> None:
    client = fakeredis.FakeAsyncRedis()
    ctx = context(client, "validator")
    ctx.counts = counts = metrics.BatchCounts()
    ctx.count("accepted", 8)
    ctx.dead_letter_move(ENTRIES[0], ["invalid_stage:foo", "invalid_severity:bar"], "bad")
    ctx.dead_letter_move(ENTRIES[1], ["invalid_stage:baz"], "bad")
    ctx.count("nothing", 0)
    ctx.counts = None
    await metrics.MetricsMiddleware().after_batch(ctx, BatchDone(ENTRIES, 0.02, counts))
    stage = (await metrics.read_stage_metrics(client, NAMES, ["validator", "coach"]))[0]
    assert stage.batches == 1 and stage.entries == 10
    assert stage.counters == {"accepted": 8, "dead_lettered": 2}
    assert stage.reasons == {"invalid_stage": 2, "invalid_severity": 1}
    assert stage.buckets == {"0.025": 1} and stage.seconds_sum == 0.02
    assert await client.exists(NAMES.metrics("validator")) == 1


async def test_nothing_is_written_when_the_batch_fails() -> None:
    client = fakeredis.FakeAsyncRedis()
    ctx = context(client, "persister")
    counts = metrics.BatchCounts()
    counts.count("persisted", 5)
    done = BatchDone(ENTRIES[:5], 0.1, counts, RuntimeError("handler failed"))
    await metrics.MetricsMiddleware().after_batch(ctx, done)
    assert await client.hgetall(NAMES.metrics("persister")) == {}


def test_counts_outside_a_batch_are_ignored() -> None:
    ctx = context(fakeredis.FakeAsyncRedis(), "validator")
    ctx.count("accepted", 3)
    ctx.dead_letter_move(ENTRIES[0], ["x"], "bad")
    assert ctx.counts is None and ctx.totals == metrics.Totals()


def test_totals_add_up_completed_batches() -> None:
    totals, counts = metrics.Totals(), metrics.BatchCounts()
    counts.count("persisted", 2)
    counts.dead_letter(["persist_rejected"])
    totals.add(3, counts)
    totals.add(4, counts)
    assert (totals.batches, totals.entries) == (2, 7)
    assert totals.counters == {"persisted": 4, "dead_lettered": 2}
    assert totals.reasons == {"persist_rejected": 2}


async def test_an_unreachable_redis_does_not_raise() -> None:
    # port 1 on loopback refuses at once; no retries
    client = aredis.Redis(port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    await metrics.record_batch(client, NAMES, "coach", entries=1, seconds=0.1)
    await client.aclose()
