"""The coach worker's batch handler: plan (pure), merge and write per project, then ack.

One batch gives each touched project one merge, and each touched (project, stage) one
recompute and at most one cache write, however many events of the batch touched it. All merges
of a batch travel in one pipeline, all writes in another: two round trips per batch. Entries are
acknowledged only after every write, so a crash in between redelivers them, and the merge makes
the redelivery a no-op on the state.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from services.coach import logic
from services.coach.io import CoachStore, Merged, StageResult, Written
from shared.consumer import BatchContext, Entry
from shared.logging import get_logger
from shared.metrics import CountsBatches, Totals

log = get_logger("runbus.coach")


def outcome_counts(written: list[Written]) -> dict[str, int]:
    """The named counts of a batch's cache writes: ``recomputes`` and ``cache_<outcome>``."""
    counts = {"recomputes": len(written)}
    for kind in ("written", "unchanged", "stale"):
        counts[f"cache_{kind}"] = sum(w.outcome == kind for w in written)
    return counts


@dataclass
class CoachStats(CountsBatches):
    """Counters of one coach worker (the tests and logs read them), read off `totals`.

    A live handler reports through its batch context and points `totals` at its worker's;
    a rebuild, which has no worker, adds its writes with `count`.
    """

    totals: Totals = field(default_factory=Totals)
    """What the batches reported: named counts and dead letters."""
    max_writes_per_key: int = 0
    """Most cache writes of one (project, stage) within one batch (must stay <= 1)."""

    @property
    def malformed(self) -> int:
        """Entries dead-lettered as not a valid-stream envelope."""
        return self.totals.reasons[logic.MALFORMED]

    @property
    def recomputes(self) -> int:
        """(project, stage) suggestion lists computed."""
        return self.totals.counters["recomputes"]

    @property
    def written(self) -> int:
        """Cache documents written (each also announced)."""
        return self.totals.counters["cache_written"]

    @property
    def unchanged(self) -> int:
        """Recomputes whose result equalled the cached one."""
        return self.totals.counters["cache_unchanged"]

    @property
    def stale(self) -> int:
        """Results dropped because another worker had written a newer state's result."""
        return self.totals.counters["cache_stale"]

    def count(self, result: Written) -> None:
        """Record one write attempt (outside a worker: a rebuild)."""
        self.totals.counters.update(outcome_counts([result]))


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
        self.stats.totals = ctx.totals  # the worker counts what this batch reports
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
        for name, amount in outcome_counts(written).items():
            ctx.count(name, amount)
        self._check_writes(results, written)

    def _check_writes(self, results: list[StageResult], written: list[Written]) -> None:
        writes: Counter[tuple[int, str]] = Counter()
        for result, outcome in zip(results, written, strict=True):
            if outcome.outcome == "written":
                writes[(result.project_id, result.stage)] += 1
        self.stats.max_writes_per_key = max(self.stats.max_writes_per_key, *writes.values(), 0)


def _recompute(plan: logic.BatchPlan, merged: dict[int, Merged]) -> list[StageResult]:
    """Each touched (project, stage) once: the stages the batch touched, plus any never cached."""
    results: list[StageResult] = []
    for project_id, update in plan.projects.items():
        after = merged[project_id]
        for stage in sorted(update.stages | after.missing):
            suggestions = logic.suggest(stage, after.state)
            results.append(StageResult(project_id, stage, after.rev, suggestions, update.source_id))
    return results
