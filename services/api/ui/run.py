"""The run page (``/ui/runs/{run_id}``): one run's timeline and its family as a tree.

The timeline is `services.history.reads.read_run`, the call behind
``GET /api/runs/{run_id}/events``, with the same parameters and rules (``children``,
``cursor``, ``limit``); the tree is `services.history.reads.read_family`, the call behind
``GET /api/runs/{run_id}/family`` (the parent chain and the direct children).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from services.api.state import State
from services.api.ui.access import Access, require_ui_read
from services.api.ui.render import page
from services.history.base import MAX_PAGE
from services.history.params import MIN_PAGE
from services.history.reads import read_family, read_run

router = APIRouter()
#: Events per page on the dashboard (the API's default page, 1000, is a lot of HTML).
UI_RUN_PAGE = 200
#: The longest run id the API accepts (``GET /api/runs/{run_id}/events``).
MAX_RUN_ID = 256


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
    family = await read_family(store, run_id)
    timeline = await read_run(store, run_id, children=children, cursor=cursor, limit=limit)
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
