"""What the dashboard's status sampler keeps: `StatusSample`, built from one round of reads.

One sample is the bus status (`services.ops.status.bus_status`: every stream, group and
consumer) and the stages' counters (`shared.metrics.read_stage_metrics`), reduced to what the
overview page draws: each stage's throughput since the previous sample and its health, each
stream's length, lag and pending entries, and dead letters by reason family. Everything here
is pure; `services.api.live` does the reading.

Health (`service_health`) reuses the container healthcheck's rule (`services.ops.health`):
``down`` when a group is missing, or work has waited longer than `MAX_IDLE_S` undelivered
while no consumer of the group read for that long; ``up`` when the stage handled entries since
the previous sample or one of its consumers read within `MAX_IDLE_S`; ``idle`` otherwise (healthy
by the rule, but no sign of life: a quiet stage and a stopped one with nothing to do look the
same); ``unknown`` when Redis could not be read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from services.ops.health import MAX_IDLE_S, WorkerView
from services.ops.logic import age_s
from services.ops.models import BusStatus, Count, GroupStatus, RoleTotal, StreamStatus
from shared.metrics import StageMetrics
from shared.pipeline import PIPELINE, Stage

Health = Literal["up", "idle", "down", "unknown"]


class StageSample(BaseModel):
    """One stage at one sample."""

    stage: str = Field(description="Stage name (validator, persister, coach).")
    health: Health = Field(description="up, idle, down or unknown (see services.api.samples).")
    rate: float | None = Field(
        description="Entries it handled per second since the previous sample; None on the first."
    )
    entries: int | None = Field(description="Entries it handled ever (its counter); None: unread.")


class StreamPoint(BaseModel):
    """One stream at one sample: what the overview charts."""

    role: str = Field(description="events, valid or dead; for an outlet, its name (actions).")
    partition: int = Field(description="Partition index (0 for an outlet).")
    length: int = Field(description="Entries in the stream.")
    lag: int | None = Field(description="Undelivered entries over its groups; None: unknown.")
    pending: int = Field(description="Delivered, unacknowledged entries summed over its groups.")


class StatusSample(BaseModel):
    """One round of the sampler."""

    at: datetime = Field(description="When it was taken.")
    up: bool = Field(description="False when Redis could not be read (everything else unknown).")
    error: str | None = Field(None, description="Why Redis could not be read.")
    stages: list[StageSample] = Field(default_factory=list, description="Each stage, in order.")
    streams: list[StreamPoint] = Field(default_factory=list, description="Each stream.")
    totals: list[RoleTotal] = Field(
        default_factory=list, description="Each role summed over the partitions."
    )
    dead_by_family: list[Count] = Field(
        default_factory=list,
        description="Dead letters ever written, by reason family (the stages' counters: a "
        "redrive or purge does not lower them), most frequent first.",
    )
    status: BusStatus | None = Field(
        None, description="The full status (consumers, idle times); only on the newest sample."
    )


@dataclass(frozen=True, slots=True)
class Counted:
    """The stages' entry counters at one moment: what the next sample's rates start from."""

    at: datetime
    entries: Mapping[str, int]


def rates(previous: Counted | None, current: Counted) -> dict[str, float | None]:
    """Entries per second of each stage between two readings (None without a previous one,
    or when a counter went down: its hash was deleted)."""
    out: dict[str, float | None] = {}
    elapsed = None if previous is None else (current.at - previous.at).total_seconds()
    for stage, now_count in current.entries.items():
        before = None if previous is None else previous.entries.get(stage)
        if before is None or elapsed is None or elapsed <= 0 or now_count < before:
            out[stage] = None
        else:
            out[stage] = (now_count - before) / elapsed
    return out


def _waiting_s(stream: StreamStatus, group: GroupStatus, now: datetime) -> float | None:
    """How long the oldest undelivered entry has waited, at most (None: nothing waits).

    The sample has no read of that entry; it is younger than the last delivered one, so that
    one's age is the bound (the stream's first entry when nothing was delivered yet).
    """
    if group.lag == 0 or stream.last_id is None or stream.last_id == group.last_delivered_id:
        return None
    delivered = group.last_delivered_id
    if delivered is None or delivered == "0-0":
        return stream.first_age_s
    return age_s(delivered, now)


def _view(stream: StreamStatus, group: GroupStatus | None, now: datetime) -> WorkerView:
    if group is None or not group.exists:
        return WorkerView(group_exists=False)
    idles = [c.idle_ms / 1000 for c in group.consumers]
    return WorkerView(True, min(idles) if idles else None, _waiting_s(stream, group, now))


def worker_views(status: BusStatus, stage: Stage, now: datetime) -> list[WorkerView]:
    """One view per partition of the stage's group on the stream it reads (any consumer)."""
    views = []
    for stream in status.streams:
        if stream.role == stage.reads.value:
            group = next((g for g in stream.groups if g.name == stage.group), None)
            views.append(_view(stream, group, now))
    return views or [WorkerView(group_exists=False)]


def stage_health(
    stage: Stage,
    status: BusStatus | None,
    rate: float | None,
    now: datetime,
    max_idle_s: float = MAX_IDLE_S,
) -> Health:
    """One stage's health from one sample (see the module's docstring)."""
    if status is None:
        return "unknown"
    views = worker_views(status, stage, now)
    if not all(view.healthy(max_idle_s) for view in views):
        return "down"
    active = any(v.idle_s is not None and v.idle_s <= max_idle_s for v in views)
    return "up" if active or (rate or 0) > 0 else "idle"


def service_health(
    status: BusStatus | None,
    stage_rates: Mapping[str, float | None],
    now: datetime,
    max_idle_s: float = MAX_IDLE_S,
) -> dict[str, Health]:
    """Every stage's health (`stage_health`), by stage name, in pipeline order."""
    return {
        stage.name: stage_health(stage, status, stage_rates.get(stage.name), now, max_idle_s)
        for stage in PIPELINE.stages
    }


def stream_points(status: BusStatus) -> list[StreamPoint]:
    """Each stream's length, and lag and pending summed over its groups (the outlets' last)."""
    points = []
    for stream in (*status.streams, *status.outlets):
        present = [g for g in stream.groups if g.exists]
        lags = [g.lag for g in present]
        points.append(
            StreamPoint(
                role=stream.role,
                partition=stream.partition,
                length=stream.length,
                lag=None if None in lags else sum(g.lag or 0 for g in present),
                pending=sum(g.pending for g in present),
            )
        )
    return points


def dead_by_family(metrics: Sequence[StageMetrics]) -> list[Count]:
    """Dead letters by reason family over every stage's counters, most frequent first."""
    totals: dict[str, int] = {}
    for row in metrics:
        for family, count in row.reasons.items():
            totals[family] = totals.get(family, 0) + count
    ordered = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))
    return [Count(key=k, count=n) for k, n in ordered]


def build_sample(
    status: BusStatus, metrics: Sequence[StageMetrics], previous: Counted | None
) -> tuple[StatusSample, Counted]:
    """The sample of one round of reads, and the counters the next round's rates start from."""
    counted = Counted(status.at, {row.stage: row.entries for row in metrics})
    stage_rates = rates(previous, counted)
    health = service_health(status, stage_rates, status.at)
    stages = [
        StageSample(
            stage=name,
            health=health[name],
            rate=stage_rates.get(name),
            entries=counted.entries.get(name),
        )
        for name in PIPELINE.stage_names
    ]
    sample = StatusSample(
        at=status.at,
        up=True,
        stages=stages,
        streams=stream_points(status),
        totals=status.totals,
        dead_by_family=dead_by_family(metrics),
        status=status,
    )
    return sample, counted


def down_sample(at: datetime, error: str) -> StatusSample:
    """The sample of a round that could not read Redis: every stage's health unknown."""
    stages = [
        StageSample(stage=name, health="unknown", rate=None, entries=None)
        for name in PIPELINE.stage_names
    ]
    return StatusSample(at=at, up=False, error=error, stages=stages)
