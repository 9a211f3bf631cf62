"""``GET /api/search?q=``: one box that finds an event id, a run id, an entry id or a project.

The route is `services.api.search.search` over HTTP (the dashboard's box calls the same).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from services.api.models import responses
from services.api.search import MAX_QUERY, SearchResult, search
from services.api.state import ReadAccess, State
from services.ops.lookup import SOURCE_PAGE, SOURCE_PAGES

router = APIRouter(prefix="/api", tags=["search"], dependencies=[ReadAccess])


#: The operation's description in the OpenAPI document (the bound spelled from its constants).
DESCRIPTION = (
    "Everything the text names: stored events (by event id, or by the id derived from an "
    "incoming entry id), runs, projects, dead letters (by their id, or by their source entry's "
    "id: matched source_id) and entries still on the incoming or valid streams. Each lookup is "
    "an indexed point read or an XRANGE of one id, but the dead letters of a source entry id: "
    f"a scan of at most {SOURCE_PAGE * SOURCE_PAGES} dead letters per partition, from that "
    "id's millisecond on (a dead letter written later than that is not found by its source "
    "id). An empty list when nothing matches."
)


@router.get(
    "/search",
    response_model=SearchResult,
    responses=responses(401, 422, 503),
    description=DESCRIPTION,
)
async def search_everything(
    state: State,
    q: Annotated[
        str,
        Query(
            min_length=1,
            max_length=MAX_QUERY,
            description="An event id, run id, stream entry id (1700000000000-0, or "
            "3:1700000000000-0 with partitions), dead-letter id or project id.",
        ),
    ],
) -> SearchResult:
    """Everything the text names (`DESCRIPTION`)."""
    return await search(state.redis, state.settings.names, await state.history(), q)
