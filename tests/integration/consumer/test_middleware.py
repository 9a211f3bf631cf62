"""Stories: a worker's middleware sees every batch; the stage's metrics are one middleware.

A handler reports through its batch context; the worker hands each batch to the middleware
before and after the handler (the first middleware wrapping the others), tells them of every
dead letter, and writes the metrics hash only for batches whose handler returned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
import redis.asyncio as aredis

from shared.consumer import ATTEMPTS_EXCEEDED, BatchContext, BatchDone, Entry, StreamWorker
from shared.metrics import MetricsMiddleware, read_stage_metrics
from shared.settings import Settings
from tests.workers import run_until

pytestmark = pytest.mark.integration


@dataclass
class Recorder:
    """A middleware that writes down every hook call into a shared log."""

    name: str
    log: list[tuple[Any, ...]] = field(default_factory=list)

    async def before_batch(self, ctx: BatchContext, entries: Sequence[Entry]) -> None:
        self.log.append(("before", self.name, len(entries)))

    async def after_batch(self, ctx: BatchContext, done: BatchDone) -> None:
        self.log.append(("after", self.name, len(done.entries), done.error is None))

    def on_dead_letter(self, ctx: BatchContext, entry: Entry, errors: Sequence[str]) -> None:
        self.log.append(("dead", self.name, entry.id, list(errors)))


async def test_middleware_wraps_each_batch_and_metrics_count_only_completed_ones(
    async_client: aredis.Redis, sync_client: redis.Redis, settings: Settings
) -> None:
    # given 20 entries: the handler crashes on any batch holding one, and dead-letters another
    stream, group = settings.names.events, "g"
    ids = [sync_client.xadd(stream, {b"n": str(i).encode()}).decode() for i in range(20)]
    poison, rejected = ids[7], ids[3]

    async def handler(batch: list[Entry], ctx: BatchContext) -> None:
        if any(e.id == poison for e in batch):
            raise RuntimeError("boom")
        bad = [e for e in batch if e.id == rejected]
        await ctx.dead_letter([(e, ["invalid_stage:x"], "refused") for e in bad])
        await ctx.ack([e.id for e in batch if e.id != rejected])
        ctx.count("handled", len(batch) - len(bad))

    log: list[tuple[Any, ...]] = []
    outer, inner = Recorder("outer", log), Recorder("inner", log)
    worker = StreamWorker(
        async_client, settings, stream=stream, group=group, stage="mw", handler=handler,
        middleware=[MetricsMiddleware(), outer, inner],
    )  # fmt: skip
    # when it runs until both are dead-lettered and nothing is pending
    await run_until(
        worker,
        lambda: (
            sync_client.xlen(settings.names.dead) == 2
            and sync_client.xpending(stream, group)["pending"] == 0
        ),
    )
    # then every batch went through the hooks in onion order
    hooks = [e for e in log if e[0] != "dead"]
    assert len(hooks) % 4 == 0 and hooks
    for at in range(0, len(hooks), 4):
        n = hooks[at][2]
        ok = hooks[at + 2][3]
        assert hooks[at : at + 4] == [
            ("before", "outer", n), ("before", "inner", n),
            ("after", "inner", n, ok), ("after", "outer", n, ok),
        ]  # fmt: skip
    failed = [e for e in hooks if e[:2] == ("after", "outer") and not e[3]]
    assert len(failed) == settings.max_deliveries  # each delivery of the poison entry
    # and every middleware heard of both dead letters, the one before any batch included
    dead = [e[1:] for e in log if e[0] == "dead"]
    assert sorted(dead) == sorted(
        [(m, rejected, ["invalid_stage:x"]) for m in ("outer", "inner")]
        + [(m, poison, [ATTEMPTS_EXCEEDED]) for m in ("outer", "inner")]
    )
    # and the hash counts the completed batches only: each entry but the poison once
    (stage,) = await read_stage_metrics(async_client, settings.names, ["mw"])
    assert stage.entries == 19 and stage.batches == worker.batches
    assert stage.counters == {"handled": 18, "dead_lettered": 1}
    assert stage.reasons == {"invalid_stage": 1}
    # and the worker's own totals are the same numbers
    totals = worker.totals
    assert (totals.batches, totals.entries) == (stage.batches, stage.entries) == (
        worker.batches, worker.entries,
    )  # fmt: skip
    assert totals.counters == stage.counters and totals.reasons == stage.reasons


async def test_without_the_metrics_middleware_nothing_is_written(
    async_client: aredis.Redis, sync_client: redis.Redis, settings: Settings
) -> None:
    stream = settings.names.events
    sync_client.xadd(stream, {b"n": b"1"})

    async def handler(batch: list[Entry], ctx: BatchContext) -> None:
        await ctx.ack([e.id for e in batch])
        ctx.count("handled", len(batch))

    recorder = Recorder("only")
    worker = StreamWorker(
        async_client, settings, stream=stream, group="g", stage="bare", handler=handler,
        middleware=[recorder],
    )  # fmt: skip
    await run_until(worker, lambda: worker.entries == 1)
    assert recorder.log == [("before", "only", 1), ("after", "only", 1, True)]
    assert worker.totals.counters == {"handled": 1}
    assert sync_client.exists(settings.names.metrics("bare")) == 0
