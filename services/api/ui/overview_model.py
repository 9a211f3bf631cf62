"""What the overview page draws, from one reading of the bus: pure, no I/O.

`overview_view` turns a `Reading` (the bus status, each stage's throughput series and health,
dead letters by reason family, the API's own state) into an `OverviewView` the templates
render as they are: streams grouped by partition, each row's link to the dead letters it
produced, consumers' idle times in human units, one sparkline per stage, one health word per
service (colour and word: never colour alone).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from services.api.ui.links import ACTIONS, dead_letters_url
from services.api.ui.sparkline import Spark, sparkline
from services.ops.durations import format_age
from services.ops.models import BusStatus, Count, GroupStatus, RoleTotal, StreamStatus
from shared.pipeline import PIPELINE

#: The API's own name on the health card (the stages' come from `PIPELINE`).
API_SERVICE: Final = "api"
#: Health words the page knows (ui.css colours each ``health-<word>``).
HEALTH_WORDS: Final = ("up", "idle", "down", "unknown")
#: Stream roles a dead letter can name as its source (those some stage reads).
_SOURCES: Final = frozenset(stage.reads.value for stage in PIPELINE.stages)
#: Who reads each outlet outside runbus, by its name (its `StreamStatus.role`).
_READERS: Final = {outlet.title: outlet.reader for outlet in PIPELINE.outlets}
#: The dashboard page listing an outlet's entries, by its name (an outlet without one: no link).
OUTLET_PAGES: Final = {"actions": ACTIONS}


@dataclass(frozen=True, slots=True)
class Reading:
    """One reading of the bus, from whatever source (the live hub's samples, direct reads)."""

    at: datetime
    status: BusStatus | None
    """The full status; None when Redis could not be read."""
    rates: Mapping[str, Sequence[float | None]] = field(default_factory=dict)
    """Each stage's entries per second, one value per sample, oldest first."""
    handled: Mapping[str, int | None] = field(default_factory=dict)
    """Each stage's entries handled ever (its counter)."""
    health: Mapping[str, str] = field(default_factory=dict)
    """Each stage's health word (`HEALTH_WORDS`)."""
    dead_by_family: Sequence[Count] = ()
    """Dead letters by reason family, most frequent first."""
    families_note: str = ""
    """What the family counts count (the stream's contents, or every dead letter ever)."""
    api_ready: bool = True
    """The API's history store is open (Redis is `status`'s business)."""
    error: str | None = None
    """Why Redis could not be read."""
    window_s: float = 600.0
    """The span the throughput series covers (s)."""
    slots: int = 0
    """How many samples a full series holds (0: as many as it has)."""


@dataclass(frozen=True, slots=True)
class ConsumerRow:
    """One consumer of a group, its idle time in human units."""

    name: str
    pending: int
    idle: str


@dataclass(frozen=True, slots=True)
class GroupRow:
    """One group of a stream, with its link to the dead letters of that source and stage."""

    group: GroupStatus
    consumers: tuple[ConsumerRow, ...]
    link: str
    oldest_pending: str


@dataclass(frozen=True, slots=True)
class StreamRow:
    """One stream with its groups; `link` lists the dead letters it caused (an outlet's, its
    entries)."""

    stream: StreamStatus
    groups: tuple[GroupRow, ...]
    link: str
    last_age: str
    reader: str = ""
    """An outlet's outside reader (the platform); empty for the pipeline's streams."""

    @property
    def span(self) -> int:
        """Table rows the stream's cells span (one per group, at least one)."""
        return max(1, len(self.groups))


@dataclass(frozen=True, slots=True)
class PartitionView:
    """The streams of one partition, in pipeline order."""

    index: int
    streams: tuple[StreamRow, ...]


@dataclass(frozen=True, slots=True)
class StageView:
    """One stage's throughput: its sparkline and figures."""

    name: str
    spark: Spark
    rate: str
    peak: str
    handled: int | None


@dataclass(frozen=True, slots=True)
class ServiceView:
    """One service's health."""

    name: str
    health: str
    detail: str


@dataclass(frozen=True, slots=True)
class FamilyRow:
    """Dead letters of one reason family, with the link that lists them."""

    family: str
    count: int
    link: str


@dataclass(frozen=True, slots=True)
class OverviewView:
    """Everything the overview's fragments render."""

    at: datetime
    up: bool
    error: str | None
    partitions: tuple[PartitionView, ...]
    outlets: tuple[StreamRow, ...]
    totals: tuple[RoleTotal, ...]
    stages: tuple[StageView, ...]
    services: tuple[ServiceView, ...]
    families: tuple[FamilyRow, ...]
    families_note: str
    dead_letters: int
    window: str


def _stage_of(group: str) -> str | None:
    return next((s.name for s in PIPELINE.stages if s.group == group), None)


def _group_row(stream: StreamStatus, group: GroupStatus, link: str | None = None) -> GroupRow:
    consumers = tuple(
        ConsumerRow(c.name, c.pending, format_age(c.idle_ms / 1000)) for c in group.consumers
    )
    if link is None:
        source = stream.role if stream.role in _SOURCES else ""
        stage = _stage_of(group.name) or ""
        link = dead_letters_url(source=source, stage=stage) if source else dead_letters_url()
    oldest = format_age(group.oldest_pending_age_s) if group.pending else ""
    return GroupRow(group, consumers, link, oldest)


def _stream_row(stream: StreamStatus) -> StreamRow:
    source = stream.role if stream.role in _SOURCES else ""
    link = dead_letters_url(source=source)
    last = format_age(stream.last_age_s) if stream.last_id else ""
    return StreamRow(stream, tuple(_group_row(stream, g) for g in stream.groups), link, last)


def _outlet_row(stream: StreamStatus) -> StreamRow:
    link = OUTLET_PAGES.get(stream.role, "")
    groups = tuple(_group_row(stream, g, link) for g in stream.groups)
    last = format_age(stream.last_age_s) if stream.last_id else ""
    return StreamRow(stream, groups, link, last, _READERS.get(stream.role, ""))


def partitions_of(status: BusStatus) -> tuple[PartitionView, ...]:
    """The status's streams grouped by partition, in index order."""
    indexes = sorted({s.partition for s in status.streams})
    return tuple(
        PartitionView(i, tuple(_stream_row(s) for s in status.streams if s.partition == i))
        for i in indexes
    )


def rate_text(rate: float | None) -> str:
    """Entries per second as the page prints it (``-`` when not measured)."""
    if rate is None:
        return "-"
    return f"{rate:.0f}/s" if rate >= 10 else f"{rate:.1f}/s"


def _stage_views(reading: Reading) -> tuple[StageView, ...]:
    views = []
    for name in PIPELINE.stage_names:
        series = list(reading.rates.get(name, ()))
        spark = sparkline(series, reading.slots or None)
        peak = rate_text(spark.peak) if series else "-"
        views.append(StageView(name, spark, rate_text(spark.last), peak, reading.handled.get(name)))
    return tuple(views)


def _stage_detail(name: str, status: BusStatus | None) -> str:
    if status is None:
        return "Redis unreachable"
    stage = PIPELINE.stage(name)
    consumers = {
        c.name
        for s in status.streams
        if s.role == stage.reads.value
        for g in s.groups
        if g.name == stage.group
        for c in g.consumers
    }
    return f"{len(consumers)} consumer{'s' if len(consumers) != 1 else ''} in {stage.group}"


def _api_service(reading: Reading) -> ServiceView:
    if reading.status is None:
        return ServiceView(API_SERVICE, "down", "serving, but Redis is unreachable")
    if not reading.api_ready:
        return ServiceView(API_SERVICE, "down", "serving, but the history database is not open")
    return ServiceView(API_SERVICE, "up", "serving; Redis and the history database open")


def _services(reading: Reading) -> tuple[ServiceView, ...]:
    stages = tuple(
        ServiceView(name, _word(reading.health.get(name)), _stage_detail(name, reading.status))
        for name in PIPELINE.stage_names
    )
    return (*stages, _api_service(reading))


def _word(health: str | None) -> str:
    return health if health in HEALTH_WORDS else "unknown"


def _families(counts: Sequence[Count]) -> tuple[FamilyRow, ...]:
    return tuple(FamilyRow(c.key, c.count, dead_letters_url(reason=c.key)) for c in counts)


def overview_view(reading: Reading) -> OverviewView:
    """The page's view of one reading."""
    status = reading.status
    several = status is not None and status.partitions > 1
    return OverviewView(
        at=reading.at,
        up=status is not None,
        error=reading.error,
        partitions=partitions_of(status) if status else (),
        outlets=tuple(_outlet_row(s) for s in status.outlets) if status else (),
        totals=tuple(status.totals) if status and several else (),
        stages=_stage_views(reading),
        services=_services(reading),
        families=_families(reading.dead_by_family),
        families_note=reading.families_note,
        dead_letters=status.dead_letters if status else 0,
        window=format_age(reading.window_s),
    )
