"""The run page (``/ui/runs/{run_id}``): one run's timeline and its family as a tree.

The timeline is `services.history.reads.read_run`, the call behind
``GET /api/runs/{run_id}/events``, with the same parameters and rules (``children``,
``cursor``, ``limit``); the tree is the run's family read (ancestors, direct children).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from services.api.state import State
from services.api.ui.access import Access, require_ui_read
from services.api.ui.render import page
from services.history.base import MAX_PAGE, HistoryRow
from services.history.params import MIN_PAGE
from services.history.reads import read_run

router = APIRouter()
#: Events per page on the dashboard (the API's default page, 1000, is a lot of HTML).
UI_RUN_PAGE = 200
#: The longest run id the API accepts (``GET /api/runs/{run_id}/events``).
MAX_RUN_ID = 256


@dataclass(frozen=True, slots=True)
class Related:
    """A run of the family, as the tree shows it."""

    run_id: str
    first_ts: datetime | None = None
    last_ts: datetime | None = None


@dataclass(frozen=True, slots=True)
class Family:
    """The run, its parent chain (parent first) and its direct children."""

    run_id: str
    ancestors: list[Related] = field(default_factory=list)
    chain_end: str = "root"
    children: list[Related] = field(default_factory=list)
    more_children: bool = False


def family_from_rows(run_id: str, rows: list[HistoryRow]) -> Family:
    """The family the timeline's rows tell of: the parent they name, and the children among
    them (with ``children=true``)."""
    parent = next((r.parent_run_id for r in rows if r.run_id == run_id and r.parent_run_id), None)
    kids: dict[str, Related] = {}
    for row in rows:
        if row.parent_run_id == run_id and row.run_id != run_id and row.run_id not in kids:
            kids[row.run_id] = Related(row.run_id, row.ts)
    chain = [Related(parent)] if parent else []
    return Family(run_id, chain, "root", sorted(kids.values(), key=lambda r: r.run_id))


@router.get("/runs/{run_id:path}")
async def run_page(
    request: Request,
    state: State,
    _: Annotated[Access, Depends(require_ui_read)],
    run_id: Annotated[str, Path(min_length=1, max_length=MAX_RUN_ID)],
    children: bool = False,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=MIN_PAGE, le=MAX_PAGE)] = UI_RUN_PAGE,
) -> Response:
    """One run's events (both dialects) in event-time order, with its parent and children;
    the 404 page when the run has no event."""
    store = await state.history()
    timeline = await read_run(store, run_id, children=children, cursor=cursor, limit=limit)
    family = family_from_rows(run_id, timeline.rows)
    return page(
        request,
        "run.html",
        run_id=run_id,
        rows=timeline.rows,
        next_cursor=timeline.next_cursor,
        cursor=cursor,
        children=children,
        limit=limit if limit != UI_RUN_PAGE else None,
        family=family,
    )
