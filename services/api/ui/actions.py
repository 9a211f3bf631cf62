"""Action requests (``/ui/actions``): the newest clicks recorded for the platform to act on.

The same read as ``GET /api/actions`` (`services.coach.actions.recent_actions`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from services.api.state import State
from services.api.ui.access import Access, require_ui_read
from services.api.ui.render import page
from services.coach.actions import recent_actions

router = APIRouter()
MAX_SHOWN = 1000


@router.get("/actions")
async def actions_page(
    request: Request,
    state: State,
    _: Annotated[Access, Depends(require_ui_read)],
    limit: Annotated[int, Query(ge=1, le=MAX_SHOWN)] = 50,
) -> Response:
    """The newest action requests, newest first."""
    found = await recent_actions(state.redis, state.settings.names, limit)
    stream = state.settings.names.actions
    return page(request, "actions.html", actions=found, limit=limit, stream=stream)
