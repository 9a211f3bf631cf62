"""Rebuild the coach cache from the history alone (`runbus coach rebuild [--project ID]`).

It reads events in any order (the history's is ``(ts, id)``), derives the same facts as the
live worker, merges them through the same script, and recomputes every coach stage of every
project it saw, writing through the same versioned cache write. Because facts merge the same
whatever their order and however often they come, the result equals the live worker's for the
same events; a rebuild that finds nothing new bumps no version.

It first moves the keys of the coach's old format (`services.coach.legacy`): running it once is
the upgrade to per-project hash tags.

Facts are folded in memory and flushed to Redis every `FLUSH_FACTS` facts, so memory stays
bounded by the state of the projects being folded, not by the size of the history.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from pydantic import ValidationError

from services.coach import legacy, logic
from services.coach.facts import Fact, merge
from services.coach.handler import CoachStats
from services.coach.io import CoachStore, Merged, StageResult
from shared.models import COACH_STAGES, Event, PulseEvent, RunEvent, ValidEnvelope

#: Facts folded in memory before they are merged into Redis.
FLUSH_FACTS: Final = 50_000


class RowLike(Protocol):
    """What rebuild reads from a history row (``services.history.HistoryRow``)."""

    @property
    def event_id(self) -> str: ...
    @property
    def dialect(self) -> str: ...
    @property
    def project_id(self) -> int | None: ...
    @property
    def run_id(self) -> str: ...
    @property
    def parent_run_id(self) -> str | None: ...
    @property
    def stage(self) -> str | None: ...
    @property
    def severity(self) -> str: ...
    @property
    def reason_code(self) -> str | None: ...
    @property
    def actor(self) -> str | None: ...
    @property
    def summary(self) -> str | None: ...
    @property
    def payload(self) -> dict[str, Any] | None: ...
    @property
    def event_type(self) -> str | None: ...
    @property
    def message(self) -> str | None: ...
    @property
    def details(self) -> dict[str, Any] | None: ...
    @property
    def ts(self) -> datetime: ...


Source = ValidEnvelope | RowLike


@dataclass
class RebuildReport:
    """What a rebuild read and wrote."""

    events: int = 0
    """Events read, of both dialects (after the project filter)."""
    skipped: int = 0
    """Rows that could not be read as an event."""
    projects: set[int] = field(default_factory=set)
    """Projects whose stages were recomputed."""
    stats: CoachStats = field(default_factory=CoachStats)
    """Cache writes: written / unchanged / stale."""
    migrated: int = 0
    """Keys of the old format moved to their per-project-tagged names (`services.coach.legacy`)."""

    def to_dict(self) -> dict[str, int]:
        """JSON-ready summary."""
        return {
            "events": self.events,
            "skipped": self.skipped,
            "projects": len(self.projects),
            "recomputed": self.stats.recomputes,
            "written": self.stats.written,
            "unchanged": self.stats.unchanged,
            "stale": self.stats.stale,
        }


def event_of(source: Source) -> tuple[Event, str] | None:
    """The event and its id, from an envelope or a history row; None for an unreadable row."""
    try:
        if isinstance(source, ValidEnvelope):
            return logic.event_of(source), source.event_id
        if source.dialect == "pulse":
            return _pulse(source), source.event_id
        return _brewslm(source), source.event_id
    except ValidationError:
        return None


def _brewslm(row: RowLike) -> RunEvent:
    return RunEvent(
        event_id=row.event_id,
        project_id=row.project_id,
        run_id=row.run_id,
        parent_run_id=row.parent_run_id,
        stage=row.stage or "",
        severity=row.severity,
        reason_code=row.reason_code,
        actor=row.actor or "system",
        summary=row.summary,
        payload=row.payload or {},
        ts=row.ts,
    )


def _pulse(row: RowLike) -> PulseEvent:
    return PulseEvent(
        event_id=row.event_id,
        run_id=row.run_id,
        parent_run_id=row.parent_run_id,
        project_id=row.project_id,
        event_type=row.event_type or "",
        severity=row.severity,
        message=row.message or "",
        details=row.details,
        created_at=row.ts,
    )


async def rebuild(
    store: CoachStore,
    taxonomy_version: str,
    events: Iterable[Source] | AsyncIterable[Source],
    *,
    project_id: int | None = None,
    reset: bool = False,
    flush_facts: int = FLUSH_FACTS,
) -> RebuildReport:
    """Recompute the cache of every project in `events` (or only `project_id`).

    With `reset`, each rebuilt project's state is dropped before the history's facts go in
    (run it with the coach worker stopped); documents keep their versions either way.
    """
    folder = _Folder(store, reset, flush_facts)
    report = RebuildReport(migrated=await legacy.migrate(store, project_id))
    async for source in _each(events):
        found = event_of(source)
        if found is None:
            report.skipped += 1
            continue
        event, event_id = found
        if project_id is not None and event.project_id != project_id:
            continue
        report.events += 1
        facts = logic.facts_from_event(event, event_id)
        if facts and event.project_id is not None:
            await folder.add(event.project_id, facts)
    for pid in sorted(folder.projects):
        await _recompute(store, taxonomy_version, pid, await folder.finish(pid), report)
    return report


async def _recompute(
    store: CoachStore, taxonomy_version: str, project_id: int, merged: Merged, report: RebuildReport
) -> None:
    results = [
        StageResult(project_id, stage, merged.rev, logic.suggest(stage, merged.state))
        for stage in COACH_STAGES
    ]
    written = await store.write_many(
        results, taxonomy_version=taxonomy_version, now=datetime.now(UTC)
    )
    for outcome in written:
        report.stats.count(outcome)
    report.projects.add(project_id)


class _Folder:
    """Folds facts per project in memory; merges them into Redis in bounded chunks."""

    def __init__(self, store: CoachStore, reset: bool, flush_facts: int) -> None:
        self.store = store
        self.reset = reset
        self.flush_facts = flush_facts
        self.pending: dict[int, dict[str, Fact]] = {}
        self.size = 0
        self.projects: set[int] = set()
        self._merged: set[int] = set()

    async def add(self, project_id: int, facts: list[Fact]) -> None:
        """Fold one event's facts; flush everything once the fold is big enough."""
        bucket = self.pending.setdefault(project_id, {})
        before = len(bucket)
        merge(bucket, facts)
        self.size += len(bucket) - before
        self.projects.add(project_id)
        if self.size >= self.flush_facts:
            for pid in list(self.pending):
                await self._merge(pid)
            self.size = 0

    async def finish(self, project_id: int) -> Merged:
        """Merge what is left of the project; its state and revision after that."""
        return await self._merge(project_id)

    async def _merge(self, project_id: int) -> Merged:
        facts = self.pending.pop(project_id, {})
        reset = self.reset and project_id not in self._merged
        self._merged.add(project_id)
        return await self.store.merge(project_id, facts.values(), reset=reset)


async def _each(items: Iterable[Source] | AsyncIterable[Source]) -> AsyncIterator[Source]:
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item
