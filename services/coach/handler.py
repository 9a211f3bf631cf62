"""The coach worker's batch handler: plan (pure), merge and write per project, then ack.

One batch gives each touched project one merge, and each touched (project, stage) one
recompute and at most one cache write, however many events of the batch touched it. All merges
of a batch travel in one pipeline, all writes in another: two round trips per batch. Entries are
acknowledged only after every write, so a crash in between redelivers them, and the merge makes
the redelivery a no-op on the state.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from services.coach import logic
from services.coach.io import CoachStore, Merged, StageResult, Written
from shared import metrics
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
        updates = {pid: update.facts.values() for pid, update in plan.projects.items()}
        results = _recompute(plan, await self.store.merge_many(updates))
        now = datetime.now(UTC)
        written = await self.store.write_many(
            results, taxonomy_version=self.taxonomy_version, now=now
        )
        if plan.malformed:
            by_id = {entry.id: entry for entry in batch}
            await ctx.dead_letter([(by_id[i], [logic.MALFORMED], why) for i, why in plan.malformed])
            log.warning("coach_malformed_envelopes", count=len(plan.malformed))
        await ctx.ack(plan.handled)
        self._count(batch, plan, results, written)

    def _count(
        self,
        batch: list[Entry],
        plan: logic.BatchPlan,
        results: list[StageResult],
        written: list[Written],
    ) -> None:
        stats = self.stats
        stats.batches += 1
        stats.entries += len(batch)
        stats.malformed += len(plan.malformed)
        writes: Counter[tuple[int, str]] = Counter()
        for result, outcome in zip(results, written, strict=True):
            stats.count(outcome)
            if outcome.outcome == "written":
                writes[(result.project_id, result.stage)] += 1
        stats.max_writes_per_key = max(stats.max_writes_per_key, *writes.values(), 0)
        # Shared stage counters (the API's /metrics): runbus_coach_recomputes and outcomes.
        metrics.note("recomputes", len(results))
        for kind in ("written", "unchanged", "stale"):
            metrics.note(f"cache_{kind}", sum(w.outcome == kind for w in written))


def _recompute(plan: logic.BatchPlan, merged: dict[int, Merged]) -> list[StageResult]:
    """Each touched (project, stage) once: the stages the batch touched, plus any never cached."""
    results: list[StageResult] = []
    for project_id, update in plan.projects.items():
        after = merged[project_id]
        for stage in sorted(update.stages | after.missing):
            suggestions = logic.suggest(stage, after.state)
            results.append(StageResult(project_id, stage, after.rev, suggestions, update.source_id))
    return results
