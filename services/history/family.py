"""A run's family: its ancestors up the parent chain and its direct children, from index reads.

Every read is an index probe (`HistoryStore.run_spans`, `HistoryStore.child_runs`): one span
per ancestor, one child list, one span per listed child. Nothing counts a run's events (a
count reads every index entry of the run); the spans give each run's first and last event time
instead.

A parent chain ends at a run naming no parent (``root``), at a parent the history has no
event of (``missing``), where it loops back to a run already in it (``cycle``), or after
`MAX_ANCESTORS` (``limit``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from services.history.base import MAX_DEPTH, HistoryStore, RunSpan

#: Ancestors followed at most (the depth bound of the descendants' walk, `MAX_DEPTH`).
MAX_ANCESTORS = MAX_DEPTH
#: Children listed at most in one family read.
MAX_CHILDREN = 1000
#: Children listed by default.
CHILDREN_PAGE = 100

ChainEnd = Literal["root", "missing", "cycle", "limit"]


class RelatedRun(BaseModel):
    """A run of the family: its id and, when the history has its events, their time span."""

    run_id: str = Field(description="Run id.")
    first_ts: datetime | None = Field(
        description="Its earliest event time; null when the history has no event of it."
    )
    last_ts: datetime | None = Field(description="Its latest event time; null likewise.")


class RunFamily(BaseModel):
    """One run with its parent chain and its direct children."""

    run_id: str = Field(description="The run.")
    first_ts: datetime = Field(description="Its earliest event time.")
    last_ts: datetime = Field(description="Its latest event time.")
    parent_run_id: str | None = Field(
        description="Its parent (the first its events name), null for a root run."
    )
    ancestors: list[RelatedRun] = Field(
        description="Parent first, then grandparent, ... (cycle-safe, bounded)."
    )
    chain_end: ChainEnd = Field(
        description="Why the chain stops: root (no parent named), missing (a parent without "
        "stored events), cycle (it loops back), limit (too long)."
    )
    children: list[RelatedRun] = Field(description="Direct child runs, by run id.")
    more_children: bool = Field(description="True when more children exist than are listed.")


def _related(run_id: str, span: RunSpan | None) -> RelatedRun:
    if span is None:
        return RelatedRun(run_id=run_id, first_ts=None, last_ts=None)
    return RelatedRun(run_id=run_id, first_ts=span.first_ts, last_ts=span.last_ts)


async def _span(store: HistoryStore, run_id: str) -> RunSpan | None:
    spans = await store.run_spans([run_id])
    return spans[0] if spans else None


async def ancestors(store: HistoryStore, own: RunSpan) -> tuple[list[RelatedRun], ChainEnd]:
    """The parent chain of a run, parent first, and why it ends."""
    chain: list[RelatedRun] = []
    seen = {own.run_id}
    parent = own.parent_run_id
    while parent is not None:
        if parent in seen:
            return chain, "cycle"
        if len(chain) == MAX_ANCESTORS:
            return chain, "limit"
        seen.add(parent)
        span = await _span(store, parent)
        chain.append(_related(parent, span))
        if span is None:
            return chain, "missing"
        parent = span.parent_run_id
    return chain, "root"


async def children(
    store: HistoryStore, run_id: str, limit: int = CHILDREN_PAGE
) -> tuple[list[RelatedRun], bool]:
    """Up to `limit` direct children, by run id, and whether there are more (a run naming
    itself as parent is a cycle, not its own child)."""
    limit = max(1, min(limit, MAX_CHILDREN))
    found = [r for r in await store.child_runs(run_id, limit + 2) if r != run_id]
    listed = found[:limit]
    spans = {span.run_id: span for span in await store.run_spans(listed)}
    return [_related(r, spans.get(r)) for r in listed], len(found) > limit


async def run_family(
    store: HistoryStore, run_id: str, *, children_limit: int = CHILDREN_PAGE
) -> RunFamily | None:
    """The family of `run_id`; None when the history has no event of it."""
    own = await _span(store, run_id)
    if own is None:
        return None
    chain, end = await ancestors(store, own)
    kids, more = await children(store, run_id, children_limit)
    return RunFamily(
        run_id=run_id,
        first_ts=own.first_ts,
        last_ts=own.last_ts,
        parent_run_id=own.parent_run_id,
        ancestors=chain,
        chain_end=end,
        children=kids,
        more_children=more,
    )
