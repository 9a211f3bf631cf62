"""The coach worker's batch handler: plan (pure), merge and write per project, then ack.

One batch gives each touched project one merge, and each touched (project, stage) one
recompute and at most one cache write, however many events of the batch touched it. Entries are
acknowledged only after every write, so a crash in between redelivers them, and the merge makes
the redelivery a no-op on the state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from services.coach import logic
from services.coach.io import CoachStore, Written
from shared.consumer import BatchContext, Entry
from shared.logging import get_logger

log = get_logger("runbus.coach")


@dataclass
class CoachStats:
    """Counters of one coach worker (the tests and logs read them)."""

    batches: int = 0
    """Batches handled."""
    entries: int = 0
    """Entries acknowledged (handled or dead-lettered)."""
    malformed: int = 0
    """Entries dead-lettered as not a valid-stream envelope."""
    recomputes: int = 0
    """(project, stage) suggestion lists computed."""
    written: int = 0
    """Cache documents written (each also announced)."""
    unchanged: int = 0
    """Recomputes whose result equalled the cached one."""
    stale: int = 0
    """Results dropped because another worker had written a newer state's result."""
    max_writes_per_key: int = 0
    """Most cache writes of one (project, stage) within one batch (must stay <= 1)."""

    def count(self, result: Written) -> None:
        """Record one write attempt."""
        self.recomputes += 1
        if result.outcome == "written":
            self.written += 1
        elif result.outcome == "unchanged":
            self.unchanged += 1
        else:
            self.stale += 1


class CoachHandler:
    """Batch handler of the ``coach`` group on the valid stream."""

    def __init__(
        self, store: CoachStore, taxonomy_version: str, stats: CoachStats | None = None
    ) -> None:
        self.store = store
        self.taxonomy_version = taxonomy_version
        self.stats = stats if stats is not None else CoachStats()

    async def __call__(self, batch: list[Entry], ctx: BatchContext) -> None:
        """Handle one batch; every entry is acknowledged or dead-lettered at the end."""
        plan = logic.plan_batch((entry.id, entry.data) for entry in batch)
        writes: dict[tuple[int, str], int] = {}
        for project_id, update in plan.projects.items():
            await self._apply(project_id, update, writes)
        if plan.malformed:
            by_id = {entry.id: entry for entry in batch}
            await ctx.dead_letter([(by_id[i], [logic.MALFORMED], why) for i, why in plan.malformed])
            log.warning("coach_malformed_envelopes", count=len(plan.malformed))
        await ctx.ack(plan.handled)
        self.stats.batches += 1
        self.stats.entries += len(batch)
        self.stats.malformed += len(plan.malformed)
        self.stats.max_writes_per_key = max(self.stats.max_writes_per_key, *writes.values(), 0)

    async def _apply(
        self, project_id: int, update: logic.ProjectUpdate, writes: dict[tuple[int, str], int]
    ) -> None:
        merged = await self.store.merge(project_id, update.facts.values())
        now = datetime.now(UTC)
        for stage in sorted(update.stages | merged.missing):
            suggestions = logic.suggest(stage, merged.state)
            result = await self.store.write(
                project_id,
                stage,
                merged.rev,
                suggestions,
                source_id=update.source_id,
                taxonomy_version=self.taxonomy_version,
                now=now,
            )
            self.stats.count(result)
            if result.outcome == "written":
                writes[(project_id, stage)] = writes.get((project_id, stage), 0) + 1
