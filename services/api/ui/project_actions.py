"""A click on a coach strip's action button: an action request, and its confirmation.

The seed's contract: generators are read-only, side effects happen only on a click, routed on
the action's `kind` alone. runbus is not the platform, so a click records an action request
(`services.coach.actions.request_action`, what ``POST /api/projects/{id}/coach/{stage}/actions``
calls) built from the cached document the user saw, named by its version and the suggestion's
index, never by kind or params from the form. The answer is the strip again (htmx swaps it in
place) with the confirmation: request id, kind, when, and for a ``navigate`` with a configured
``RUNBUS_ACTION_URL_TEMPLATE`` the URL as a link the user may open (never followed by itself).
A stale version records nothing: the strip comes back fresh and says so.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from services.api.errors import ApiError
from services.api.routes.history import ProjectId
from services.api.state import State
from services.api.ui.access import Access, require_ui_write
from services.api.ui.project import project_page
from services.api.ui.project_view import ActionOutcome, Strip
from services.api.ui.render import page
from services.coach.actions import ActionRefused, SuggestionChanged, request_action
from services.coach.reads import get_document

router = APIRouter()
#: Largest version and index a form may name (the API's bounds).
MAX_VERSION = 2**63 - 1
MAX_INDEX = 10_000


async def _click(
    state: State, project_id: int, stage: str, version: int, index: int, who: str | None
) -> ActionOutcome:
    """Record the click; a stale version is an outcome, anything else unknown a 404."""
    try:
        made = await request_action(
            state.redis, state.settings.names, state.settings,
            project_id=project_id, stage=stage, version=version, index=index, who=who,
        )  # fmt: skip
    except SuggestionChanged:
        return ActionOutcome("suggestion_changed", seen=version)
    except ActionRefused as exc:
        raise ApiError(404, exc.code, exc.message, extra=exc.extra) from exc
    return ActionOutcome("requested", made)


@router.post("/projects/{project_id}/coach/{stage}/actions")
async def request_from_strip(
    request: Request,
    state: State,
    project_id: ProjectId,
    stage: str,
    access: Annotated[Access, Depends(require_ui_write)],
    version: Annotated[int, Form(ge=0, le=MAX_VERSION)],
    index: Annotated[int, Form(ge=0, le=MAX_INDEX)],
) -> Response:
    """One action request for suggestion `index` of the stage's document at `version`, then
    the strip with the confirmation (the whole page for a form posted without htmx)."""
    outcome = await _click(state, project_id, stage, version, index, access.who)
    if request.headers.get("hx-request") != "true":
        return await project_page(request, state, project_id, {stage: outcome})
    doc = await get_document(state.redis, state.settings.names, project_id, stage)
    return page(request, "project_strip.html", strip=Strip(project_id, stage, doc, outcome))
