"""Pipeline counters shared across processes: one Redis hash per stage, read by ``GET /metrics``.

The stages run in separate processes, so an in-process Prometheus registry of the API could not
see their counters. Instead each stage adds its numbers to the hash ``Names.metrics(stage)``
once per batch (one pipelined round trip), and the API turns the hashes into Prometheus
metrics at scrape time. Counters live as long as the namespace's keys.

How a batch reports: its handler adds named counts to its batch context
(``ctx.count("persisted", n)``) and every dead letter it builds is counted by code; the
worker gathers them in a `BatchCounts`. `MetricsMiddleware`, every `StreamWorker`'s default
middleware, writes them with the batch's size and duration when the handler returns
(`record_batch`, which can also be called directly); nothing is written for a batch whose
handler raised. The worker also keeps a process-local `Totals` of the same numbers, for its
logs and tests.

Recording never raises: metrics must not break the pipeline. A failed write is logged (debug)
and lost.

Hash fields: ``batches``, ``entries``, ``seconds_sum`` (float), ``le:<bound>`` (batches whose
duration fell in that histogram bucket, not cumulative), ``n:<name>`` (named counters such as
``accepted``, ``persisted``, ``recomputes``), ``reason:<code>`` (dead letters by error code,
with any ``:<value>`` suffix removed so the label set stays bounded).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import redis.asyncio as aredis
from redis.exceptions import RedisError

from shared.error_codes import code_family
from shared.logging import get_logger
from shared.names import Names

if TYPE_CHECKING:  # the consumer imports this module: its types are only annotations here
    from shared.consumer import BatchContext, BatchDone, Entry

log = get_logger("runbus.metrics")

#: Upper bounds (seconds) of the batch-duration histogram buckets; +Inf is implied.
LATENCY_BUCKETS: Final[tuple[float, ...]] = (
    0.001,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
INF_BUCKET: Final = "+Inf"


def bucket_of(seconds: float) -> str:
    """The histogram bucket (its upper bound as text) a duration falls into."""
    for bound in LATENCY_BUCKETS:
        if seconds <= bound:
            return repr(bound)
    return INF_BUCKET


@dataclass
class BatchCounts:
    """What one batch reported while its handler ran: named counts and dead letters."""

    counters: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)

    def count(self, name: str, amount: int = 1) -> None:
        """Add to a named counter (``n:<name>``)."""
        self.counters[name] += amount

    def dead_letter(self, errors: Iterable[str]) -> None:
        """Count one dead letter, and each of its error code families once."""
        self.counters["dead_lettered"] += 1
        for code in {code_family(c) for c in errors}:
            self.reasons[code] += 1


@dataclass
class Totals:
    """The running sums of one worker's batches: the process-local mirror of its hash."""

    batches: int = 0
    entries: int = 0
    counters: Counter[str] = field(default_factory=Counter)
    """Named counts (``n:<name>``), ``dead_lettered`` included."""
    reasons: Counter[str] = field(default_factory=Counter)
    """Dead letters by error code family (``reason:<code>``)."""

    def add(self, entries: int, counts: BatchCounts) -> None:
        """Add one completed batch."""
        self.batches += 1
        self.entries += entries
        self.counters.update(counts.counters)
        self.reasons.update(counts.reasons)


class CountsBatches:
    """Read access to a `Totals` held as ``self.totals``: the batches and entries so far."""

    totals: Totals

    @property
    def batches(self) -> int:
        """Batches handled so far."""
        return self.totals.batches

    @property
    def entries(self) -> int:
        """Entries handed to the handler in those batches (handled or dead-lettered)."""
        return self.totals.entries


async def record_batch(
    client: aredis.Redis,
    names: Names,
    stage: str,
    *,
    entries: int,
    seconds: float,
    counters: Mapping[str, int] | None = None,
    reasons: Mapping[str, int] | None = None,
) -> None:
    """Add one batch's numbers to the stage's hash, in one round trip; never raises."""
    key = names.metrics(stage)
    try:
        async with client.pipeline(transaction=False) as pipe:
            pipe.hincrby(key, "batches", 1)
            pipe.hincrby(key, "entries", entries)
            pipe.hincrbyfloat(key, "seconds_sum", seconds)
            pipe.hincrby(key, f"le:{bucket_of(seconds)}", 1)
            for name, amount in (counters or {}).items():
                pipe.hincrby(key, f"n:{name}", amount)
            for code, amount in (reasons or {}).items():
                pipe.hincrby(key, f"reason:{code_family(code)}", amount)
            await pipe.execute()
    except (RedisError, OSError) as exc:
        log.debug("metrics_write_failed", stage=stage, error=repr(exc))


class MetricsMiddleware:
    """The `WorkerMiddleware` that writes each completed batch to the stage's counters hash."""

    async def before_batch(self, ctx: BatchContext, entries: Sequence[Entry]) -> None:
        """Nothing to do: the worker times the handler and gathers its counts."""

    async def after_batch(self, ctx: BatchContext, done: BatchDone) -> None:
        """One round trip with the batch's size, duration and counts; nothing if it failed."""
        if done.error is not None:
            return  # its entries stay pending and are counted when they are handled
        await record_batch(
            ctx.client,
            ctx.settings.names,
            ctx.stage,
            entries=len(done.entries),
            seconds=done.seconds,
            counters=done.counts.counters,
            reasons=done.counts.reasons,
        )

    def on_dead_letter(self, ctx: BatchContext, entry: Entry, errors: Sequence[str]) -> None:
        """Nothing to do: the batch's counts already hold its dead letters."""


@dataclass(frozen=True)
class StageMetrics:
    """The counters of one stage, decoded from its hash."""

    stage: str
    batches: int = 0
    entries: int = 0
    seconds_sum: float = 0.0
    buckets: dict[str, int] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)

    def cumulative_buckets(self) -> list[tuple[str, int]]:
        """Prometheus-style cumulative buckets, in bound order, ending with +Inf."""
        running, out = 0, []
        for bound in [*map(repr, LATENCY_BUCKETS), INF_BUCKET]:
            running += self.buckets.get(bound, 0)
            out.append((bound, running))
        return out


def parse_stage_metrics(stage: str, raw: Mapping[bytes | str, bytes | str]) -> StageMetrics:
    """Decode one stage's hash (unknown fields are ignored)."""
    buckets: dict[str, int] = {}
    counters: dict[str, int] = {}
    reasons: dict[str, int] = {}
    totals = {"batches": 0, "entries": 0}
    seconds = 0.0
    for key_raw, value_raw in raw.items():
        key = key_raw.decode() if isinstance(key_raw, bytes) else key_raw
        value = value_raw.decode() if isinstance(value_raw, bytes) else value_raw
        prefix, _, rest = key.partition(":")
        if key == "seconds_sum":
            seconds = float(value)
        elif key in totals:
            totals[key] = int(value)
        elif rest and prefix in ("le", "n", "reason"):
            target = {"le": buckets, "n": counters, "reason": reasons}[prefix]
            target[rest] = int(value)
    return StageMetrics(
        stage, totals["batches"], totals["entries"], seconds, buckets, counters, reasons
    )


async def read_stage_metrics(
    client: aredis.Redis, names: Names, stages: Iterable[str]
) -> list[StageMetrics]:
    """Every stage's counters (zeros for a stage that has not reported yet)."""
    wanted = list(stages)
    async with client.pipeline(transaction=False) as pipe:
        for stage in wanted:
            pipe.hgetall(names.metrics(stage))
        replies = await pipe.execute()
    return [
        parse_stage_metrics(stage, raw or {}) for stage, raw in zip(wanted, replies, strict=True)
    ]
