"""``GET /metrics``: Prometheus metrics of the whole pipeline, read from Redis at scrape time.

The services run in separate processes, so nothing is kept in the API's memory. The streams and
stages are those of `shared.pipeline.PIPELINE`. Two sources:

- the streams themselves (exact, need no cooperation from the services): ``XINFO STREAM``'s
  ``entries-added`` counts every event ever received (incoming stream), accepted (valid stream:
  only the validator writes there) and dead-lettered (dead-letter stream, every stage);
  ``XINFO GROUPS`` gives each group's lag, pending entries and consumers. With several
  partitions the totals are summed over them, and the per-stream and per-group series carry a
  ``partition`` label (with one partition they have none, as before);
- per-stage counter hashes the stages add to once per batch (`shared.metrics`): dead letters by
  reason code, persisted rows, coach recomputes, entries and batches handled, and the batch
  duration histogram;
- the dead-letter retention's hash (`services.ops.status.retention_status`): dead letters
  archived and expired, the archive's size, whether the last sweep failed.

One series is this API process's own: ``runbus_ui_subscribers``, the dashboard's open live
subscriptions by topic (`services.api.live.LiveHub.subscribers`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aredis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from services.ops.logic import now_utc
from services.ops.models import RedisMemory, RetentionStatus
from services.ops.status import lag_age_s, redis_memory, retention_status
from shared.metrics import StageMetrics, read_stage_metrics
from shared.names import Names, Partition
from shared.pipeline import PIPELINE
from shared.settings import Settings
from shared.wire import as_text


@dataclass(frozen=True)
class StreamInfo:
    """What XINFO says about one stream (zeros when it does not exist yet)."""

    role: str
    """Its label: the `StreamKind` (``events``, ``valid``, ``dead``) or the outlet's title
    (``actions``)."""
    length: int = 0
    entries_added: int = 0
    groups: tuple[dict[str, Any], ...] = ()
    partition: int | None = None
    """Its partition's index; None with one partition, and for an outlet (one for the bus:
    its partition label is empty when the others have one)."""
    key: str = ""
    """Its Redis key (what ``XPENDING`` of its groups reads)."""


@dataclass(frozen=True)
class Snapshot:
    """Everything one scrape read."""

    up: bool
    streams: tuple[StreamInfo, ...] = ()
    stages: tuple[StageMetrics, ...] = ()
    subscribers: tuple[tuple[str, int], ...] = ()  #: This process's live subscriptions by topic.
    retention: RetentionStatus = dataclasses.field(default_factory=RetentionStatus)
    memory: RedisMemory | None = None


async def _partition_streams(
    client: aredis.Redis, partition: Partition, label: int | None
) -> list[StreamInfo]:
    """One partition's streams, one round trip (its keys share a slot: one node on a cluster)."""
    kinds = tuple(stream.kind for stream in PIPELINE.streams)
    async with client.pipeline(transaction=False) as pipe:
        for kind in kinds:
            pipe.xinfo_stream(partition.stream(kind))
            pipe.xinfo_groups(partition.stream(kind))
        replies = await pipe.execute(raise_on_error=False)
    streams = []
    for index, kind in enumerate(kinds):
        info, groups = replies[2 * index], replies[2 * index + 1]
        streams.append(_info(kind.value, partition.stream(kind), label, info, groups))
    await _oldest_pending(client, streams)
    return streams


def _info(role: str, key: str, label: int | None, info: Any, groups: Any) -> StreamInfo:
    """A stream's `StreamInfo` from its XINFO replies (zeros for a stream not there yet)."""
    if isinstance(info, Exception) or isinstance(groups, Exception):
        return StreamInfo(role, partition=label, key=key)
    added = int(info.get("entries-added") or 0)
    return StreamInfo(role, int(info.get("length", 0)), added, tuple(groups), label, key)


async def _outlet_streams(client: aredis.Redis, names: Names) -> list[StreamInfo]:
    """The outlets' streams (one each for the whole bus) and their readers' groups."""
    keys = [(outlet.title, outlet.key(names)) for outlet in PIPELINE.outlets]
    replies = []
    for _, key in keys:  # each its own slot on a cluster: one round trip each
        async with client.pipeline(transaction=False) as pipe:
            pipe.xinfo_stream(key)
            pipe.xinfo_groups(key)
            replies.append(await pipe.execute(raise_on_error=False))
    streams = [_info(t, k, None, i, g) for (t, k), (i, g) in zip(keys, replies, strict=True)]
    await _oldest_pending(client, streams)
    return streams


async def _oldest_pending(client: aredis.Redis, streams: list[StreamInfo]) -> None:
    """Add each group's oldest pending id (``oldest-pending``), one round trip for the
    streams (one partition's, or one outlet's: one slot): what its lag in seconds is
    measured from."""
    waiting = [
        (info, group)
        for info in streams
        for group in info.groups
        if int(group.get("pending") or 0) > 0
    ]
    if not waiting:
        return
    async with client.pipeline(transaction=False) as pipe:
        for info, group in waiting:
            pipe.xpending(info.key, group["name"])
        replies = await pipe.execute(raise_on_error=False)
    for (_, group), reply in zip(waiting, replies, strict=True):
        if not isinstance(reply, Exception) and reply.get("min") is not None:
            group["oldest-pending"] = as_text(reply["min"])


async def read_snapshot(client: aredis.Redis, settings: Settings) -> Snapshot:
    """Read the streams, groups (a round trip per partition) and stage counters; `up` False if
    Redis fails."""
    names = settings.names
    several = names.partitions > 1
    try:
        streams = [
            info
            for partition in names.all_partitions
            for info in await _partition_streams(
                client, partition, partition.index if several else None
            )
        ]
        streams += await _outlet_streams(client, names)
        stages = await read_stage_metrics(client, names, PIPELINE.stage_names)
        retention = await retention_status(client, names, now_utc())
        memory = await redis_memory(client)
    except (RedisError, OSError):
        return Snapshot(up=False)
    return Snapshot(True, tuple(streams), tuple(stages), retention=retention, memory=memory)


def _several(streams: Sequence[StreamInfo]) -> bool:
    """True when the series carry a partition label (several partitions)."""
    return any(info.partition is not None for info in streams)


def _label_values(info: StreamInfo, several: bool, *values: str) -> list[str]:
    """Label values of a per-stream series: its stream (and `values`), then its partition when
    there are several (empty for an outlet; the names are those of `_label_names`)."""
    tail = [] if not several else ["" if info.partition is None else str(info.partition)]
    return [info.role, *values, *tail]


def _label_names(streams: Sequence[StreamInfo], *names: str) -> list[str]:
    return ["stream", *names, *(["partition"] if _several(streams) else [])]


def _stream_families(snapshot: Snapshot) -> Iterator[Metric]:
    totals = (  # by the stream's role (`StreamKind` value), summed over the partitions
        ("runbus_events_received", "events", "Events ever added to the incoming stream."),
        ("runbus_events_accepted", "valid", "Events the validator accepted (valid stream)."),
        ("runbus_dead_letters", "dead", "Entries ever dead-lettered, by any stage."),
    )
    for name, role, doc in totals:
        family = CounterMetricFamily(name, doc)
        family.add_metric([], sum(s.entries_added for s in snapshot.streams if s.role == role))
        yield family
    length = GaugeMetricFamily(
        "runbus_stream_length", "Entries in a stream now.", labels=_label_names(snapshot.streams)
    )
    several = _several(snapshot.streams)
    for info in snapshot.streams:
        length.add_metric(_label_values(info, several), info.length)
    yield length
    yield from _group_families(snapshot.streams)


def _group_families(streams: Sequence[StreamInfo]) -> Iterator[Metric]:
    labels = _label_names(streams, "group")
    lag = GaugeMetricFamily(
        "runbus_group_lag", "Entries not yet delivered to a group.", labels=labels
    )
    pending = GaugeMetricFamily(
        "runbus_group_pending", "Delivered, unacknowledged entries.", labels=labels
    )
    consumers = GaugeMetricFamily("runbus_group_consumers", "Consumers in a group.", labels=labels)
    lag_s = GaugeMetricFamily(
        "runbus_group_lag_seconds",
        "How far behind a group is: the age of its oldest pending entry, or of the last entry "
        "delivered to it while entries wait; 0 when caught up.",
        labels=labels,
    )
    now, several = now_utc(), _several(streams)
    for info in streams:
        for group in info.groups:
            key = _label_values(info, several, as_text(group.get("name")))
            pending.add_metric(key, int(group.get("pending") or 0))
            consumers.add_metric(key, int(group.get("consumers") or 0))
            if group.get("lag") is not None:  # unknown after some deletions: no sample
                lag.add_metric(key, int(group["lag"]))
            behind = lag_age_s(
                group.get("oldest-pending"),
                None if group.get("lag") is None else int(group["lag"]),
                as_text(group.get("last-delivered-id")) or None,
                now,
            )
            if behind is not None:
                lag_s.add_metric(key, behind)
    yield from (lag, lag_s, pending, consumers)


def _stage_families(stages: Iterable[StageMetrics]) -> Iterator[Metric]:
    dead = CounterMetricFamily(
        "runbus_events_dead_lettered",
        "Dead letters by rejecting stage and reason code.",
        labels=["stage", "reason"],
    )
    outcomes = CounterMetricFamily(
        "runbus_stage_outcomes",
        "What each stage did, by outcome (accepted, persisted, recomputes, ...).",
        labels=["stage", "outcome"],
    )
    batches = CounterMetricFamily("runbus_batches", "Batches handled.", labels=["stage"])
    entries = CounterMetricFamily("runbus_batch_entries", "Entries handled.", labels=["stage"])
    latency = HistogramMetricFamily(
        "runbus_batch_duration_seconds", "Time to handle one batch.", labels=["stage"]
    )
    for row in stages:
        for reason, count in sorted(row.reasons.items()):
            dead.add_metric([row.stage, reason], count)
        for outcome, count in sorted(row.counters.items()):
            outcomes.add_metric([row.stage, outcome], count)
        batches.add_metric([row.stage], row.batches)
        entries.add_metric([row.stage], row.entries)
        buckets = [(bound, float(count)) for bound, count in row.cumulative_buckets()]
        latency.add_metric([row.stage], buckets, row.seconds_sum)
    yield from (dead, outcomes, batches, entries, latency)


def _headline_families(stages: Iterable[StageMetrics]) -> Iterator[Metric]:
    """The two counters dashboards ask for by name (also in runbus_stage_outcomes)."""
    counters = {row.stage: row.counters for row in stages}
    for name, stage, outcome, doc in (
        ("runbus_events_persisted", "persister", "persisted", "Rows newly written to history."),
        ("runbus_coach_recomputes", "coach", "recomputes", "Coach suggestion recomputations."),
    ):
        family = CounterMetricFamily(name, doc)
        family.add_metric([], counters.get(stage, {}).get(outcome, 0))
        yield family


def _retention_families(retention: RetentionStatus) -> Iterator[Metric]:
    """Dead-letter retention (`services.persister.retention`): what it archived and expired,
    the archive's size, and whether its last sweep failed."""
    for name, value, doc in (
        ("runbus_dead_letters_archived", retention.archived, "Dead letters archived."),
        ("runbus_dead_letters_expired", retention.expired,
         "Dead letters trimmed off their stream by retention (each archived first)."),
    ):  # fmt: skip
        counter = CounterMetricFamily(name, doc)
        counter.add_metric([], value)
        yield counter
    gauges = (
        ("runbus_dead_letter_archive_entries", retention.archive_entries,
         "Dead letters in the archive (at the last sweep)."),
        ("runbus_dead_letter_archive_bytes", retention.archive_bytes,
         "Bytes of the archived dead letters' fields (at the last sweep)."),
        ("runbus_dead_letter_retention_last_sweep_age_seconds", retention.last_sweep_age_s,
         "Since retention's last sweep."),
    )  # fmt: skip
    for name, maybe, doc in gauges:
        if maybe is not None:  # unknown before the first sweep: no sample
            gauge = GaugeMetricFamily(name, doc)
            gauge.add_metric([], maybe)
            yield gauge
    failing = GaugeMetricFamily(
        "runbus_dead_letter_retention_failing",
        "1 when retention's last sweep failed (nothing is trimmed until one succeeds).",
    )
    failing.add_metric([], 1 if retention.error else 0)
    yield failing


def _memory_families(memory: RedisMemory) -> Iterator[Metric]:
    """Redis's memory against its limit: at the limit (noeviction) it refuses XADD."""
    for name, value, doc in (
        ("runbus_redis_used_memory_bytes", memory.used_bytes, "Redis used_memory."),
        ("runbus_redis_maxmemory_bytes", memory.max_bytes, "Redis maxmemory (0: no limit)."),
        ("runbus_redis_full", 1 if memory.full else 0,
         "1 when Redis is at its maxmemory: XADD refused (OOM), POST /api/events 503."),
    ):  # fmt: skip
        gauge = GaugeMetricFamily(name, doc)
        gauge.add_metric([], value)
        yield gauge


def _subscribers_family(subscribers: Iterable[tuple[str, int]]) -> Metric:
    family = GaugeMetricFamily(
        "runbus_ui_subscribers",
        "Open live subscriptions of the dashboard in this API process, by topic.",
        labels=["topic"],
    )
    for topic, count in subscribers:
        family.add_metric([topic], count)
    return family


class _SnapshotCollector(Collector):
    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("runbus_redis_up", "1 when the API could read Redis.")
        up.add_metric([], 1 if self.snapshot.up else 0)
        yield up
        if self.snapshot.subscribers:
            yield _subscribers_family(self.snapshot.subscribers)
        if self.snapshot.up:
            yield from _stream_families(self.snapshot)
            yield from _stage_families(self.snapshot.stages)
            yield from _headline_families(self.snapshot.stages)
            yield from _retention_families(self.snapshot.retention)
            if self.snapshot.memory is not None:
                yield from _memory_families(self.snapshot.memory)


def render(snapshot: Snapshot) -> bytes:
    """The Prometheus text exposition of a snapshot."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_SnapshotCollector(snapshot))
    return generate_latest(registry)


async def scrape(
    client: aredis.Redis, settings: Settings, subscribers: Mapping[str, int] | None = None
) -> bytes:
    """Read and render (never raises on a Redis outage: ``runbus_redis_up 0``), with this
    process's live `subscribers` by topic."""
    snapshot = await read_snapshot(client, settings)
    extra = tuple(sorted((subscribers or {}).items()))
    return render(dataclasses.replace(snapshot, subscribers=extra))
