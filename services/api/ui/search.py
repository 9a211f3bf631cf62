"""The search page (``/ui/search?q=``): one box that finds an event, a run, an entry, a project.

The hits are `services.api.search.search`, the call behind ``GET /api/search?q=``; each links to
its page, and when exactly one thing matches the page sends the browser straight to it (303).
An empty query is a friendly empty page; one longer than any id is a 422 page.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response

from services.api.search import MAX_QUERY, SearchHit, search
from services.api.state import State
from services.api.ui import links
from services.api.ui.access import Access, require_ui_read
from services.api.ui.render import page, visible

router = APIRouter()


def hit_url(hit: SearchHit) -> str | None:
    """The page of a hit (None: an entry still on its way has no page of its own)."""
    if hit.kind == "event" and hit.run_id is not None and hit.event_id is not None:
        return links.event_url(hit.run_id, hit.event_id)
    if hit.kind == "run" and hit.run_id is not None:
        return links.run_url(hit.run_id)
    if hit.kind == "dead_letter" and hit.entry_id is not None:
        return links.dead_letter_url(hit.entry_id)
    if hit.kind == "project" and hit.project_id is not None:
        return links.project_url(hit.project_id)
    return None


def searchable(q: str) -> bool:
    """True when `q` can name anything: not blank, and no NUL (no store holds one in an id)."""
    return bool(q.strip()) and "\x00" not in q


@router.get("/search")
async def search_page(
    request: Request,
    state: State,
    _: Annotated[Access, Depends(require_ui_read)],
    q: Annotated[str, Query(max_length=MAX_QUERY)] = "",
) -> Response:
    """The hits of `q` as links; straight to the one page when exactly one thing matches."""
    hits = []
    if searchable(q):
        found = await search(state.redis, state.settings.names, await state.history(), q)
        hits = found.hits
    urls = [hit_url(hit) for hit in hits]
    if len(hits) == 1 and urls[0] is not None:
        return RedirectResponse(urls[0], status_code=303)
    pairs = list(zip(hits, urls, strict=True))
    # The boxes show the query with its invisible characters as marks, like any text.
    return page(request, "search.html", query=visible(q), hits=pairs, max_query=MAX_QUERY)
