"""The search page (``/ui/search?q=``): one box that finds an event, a run, an entry, a project.

Every hit links to its page; when exactly one thing matches, the page sends the browser straight
to it (303). An empty query is a friendly empty page; one longer than any id is a 422 page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response

from services.api.state import ApiState, State
from services.api.ui import links
from services.api.ui.access import Access, require_ui_read
from services.api.ui.render import page, visible
from services.history.reads import NotFound, read_project, read_run

router = APIRouter()
#: The longest query the box takes (the header's input says so too): longer than any id.
MAX_QUERY = 512
#: Largest project id the stores hold (``GET /api/projects/{id}/events``).
MAX_PROJECT_ID = 2**63 - 1

HitKind = Literal["event", "run", "dead_letter", "entry", "project"]


@dataclass(frozen=True, slots=True)
class Hit:
    """One thing the query names, with what its link needs."""

    kind: HitKind
    label: str
    run_id: str | None = None
    event_id: str | None = None
    entry_id: str | None = None
    project_id: int | None = None
    detail: str = ""


def hit_url(hit: Hit) -> str | None:
    """The page of a hit (None: an entry still on a stream has no page of its own)."""
    if hit.kind == "event" and hit.run_id is not None and hit.event_id is not None:
        return links.event_url(hit.run_id, hit.event_id)
    if hit.kind == "run" and hit.run_id is not None:
        return links.run_url(hit.run_id)
    if hit.kind == "dead_letter" and hit.entry_id is not None:
        return links.dead_letter_url(hit.entry_id)
    if hit.kind == "project" and hit.project_id is not None:
        return links.project_url(hit.project_id)
    return None


async def find(state: ApiState, query: str) -> list[Hit]:
    """What `query` names: a run, a project."""
    store = await state.history()
    hits: list[Hit] = []
    try:
        await read_run(store, query, limit=1)
        hits.append(Hit("run", query, run_id=query))
    except NotFound:
        pass
    if query.isascii() and query.isdigit() and int(query) <= MAX_PROJECT_ID:
        try:
            await read_project(store, int(query), None, limit=1)
            hits.append(Hit("project", f"project {query}", project_id=int(query)))
        except NotFound:
            pass
    return hits


@router.get("/search")
async def search_page(
    request: Request,
    state: State,
    _: Annotated[Access, Depends(require_ui_read)],
    q: Annotated[str, Query(max_length=MAX_QUERY)] = "",
) -> Response:
    """The hits of `q` as links; straight to the one page when exactly one thing matches."""
    query = q.strip()
    # No id holds a NUL (PostgreSQL text cannot): nothing to look for.
    hits = await find(state, query) if query and "\x00" not in query else []
    urls = [hit_url(hit) for hit in hits]
    if len(hits) == 1 and urls[0] is not None:
        return RedirectResponse(urls[0], status_code=303)
    found = list(zip(hits, urls, strict=True))
    # The boxes show the query with its invisible characters as marks, like any text.
    return page(request, "search.html", query=visible(q), hits=found)
