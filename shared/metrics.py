"""Pipeline counters shared across processes: one Redis hash per stage, read by ``GET /metrics``.

The stages run in separate processes, so an in-process Prometheus registry of the API could not
see their counters. Instead each stage adds its numbers to the hash ``<ns>:metrics:<stage>``
once per batch (one pipelined round trip), and the API turns the hashes into Prometheus
metrics at scrape time. Counters live as long as the namespace's keys.

Two ways to report:

- `batch_scope` (used around a handler call): times the batch, counts its entries, and flushes
  whatever `note` / `note_dead_letter` recorded during it, in one round trip at the end;
- `record_batch`: the same write, called directly.

Recording never raises: metrics must not break the pipeline. A failed write is logged (debug)
and lost.

Hash fields: ``batches``, ``entries``, ``seconds_sum`` (float), ``le:<bound>`` (batches whose
duration fell in that histogram bucket, not cumulative), ``n:<name>`` (named counters such as
``accepted``, ``persisted``, ``recomputes``), ``reason:<code>`` (dead letters by error code,
with any ``:<value>`` suffix removed so the label set stays bounded).
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Final

import redis.asyncio as aredis
from redis.exceptions import RedisError

from shared.error_codes import code_family
from shared.logging import get_logger
from shared.names import Names

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


def metrics_key(names: Names, stage: str) -> str:
    """The counters hash of one stage."""
    return f"{names.namespace}:metrics:{stage}"


def bucket_of(seconds: float) -> str:
    """The histogram bucket (its upper bound as text) a duration falls into."""
    for bound in LATENCY_BUCKETS:
        if seconds <= bound:
            return repr(bound)
    return INF_BUCKET


@dataclass
class BatchCounts:
    """What one batch did, accumulated while its handler runs."""

    counters: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)


_current: ContextVar[BatchCounts | None] = ContextVar("runbus_batch_counts", default=None)


def note(name: str, amount: int = 1) -> None:
    """Add to a named counter of the batch in progress (no-op outside `batch_scope`)."""
    counts = _current.get()
    if counts is not None and amount:
        counts.counters[name] += amount


def note_dead_letter(errors: Iterable[str]) -> None:
    """Count one dead letter and its error codes (no-op outside `batch_scope`)."""
    counts = _current.get()
    if counts is None:
        return
    counts.counters["dead_lettered"] += 1
    for code in {code_family(c) for c in errors}:
        counts.reasons[code] += 1


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
    key = metrics_key(names, stage)
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


@contextlib.asynccontextmanager
async def batch_scope(
    client: aredis.Redis, names: Names, stage: str, entries: int
) -> AsyncIterator[BatchCounts]:
    """Time a batch and flush its counts when it completes (nothing is written if it raises)."""
    counts = BatchCounts()
    token = _current.set(counts)
    started = time.perf_counter()
    try:
        yield counts
    finally:
        _current.reset(token)
    await record_batch(
        client,
        names,
        stage,
        entries=entries,
        seconds=time.perf_counter() - started,
        counters=counts.counters,
        reasons=counts.reasons,
    )


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
            pipe.hgetall(metrics_key(names, stage))
        replies = await pipe.execute()
    return [
        parse_stage_metrics(stage, raw or {}) for stage, raw in zip(wanted, replies, strict=True)
    ]
