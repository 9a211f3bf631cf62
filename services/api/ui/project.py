"""The projects list and a project's page: its Coach Mode strips and its timeline.

``/ui/projects`` lists the projects the coach knows. ``/ui/projects/{id}`` shows one CoachStrip
per coach stage (the cached suggestions, as ``GET /api/projects/{id}/coach`` serves them) and,
below, the project's timeline with the history filters of ``GET /api/projects/{id}/events``
(the same parameters, rules and errors), kept in the URL. Each strip is also a fragment of its
own (``/ui/projects/{id}/coach/{stage}``), fetched again when its document changes; given the
version the page shows (``?seen=``), an unchanged strip answers 204 without a body.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from services.api.errors import not_found
from services.api.fanout import Resync
from services.api.routes.history import ProjectId
from services.api.sse import SseEvent, sse_response
from services.api.state import State
from services.api.ui.access import Access, require_ui_read
from services.api.ui.project_view import (
    RESYNC_EVENT,
    ActionOutcome,
    Strip,
    Timeline,
    TimelineQuery,
    coach_event,
    filter_choices,
    strips,
)
from services.api.ui.render import SECURITY_HEADERS, page
from services.coach.reads import get_document, get_project, known_projects
from services.history.reads import NotFound, read_project
from shared.models import COACH_STAGES, CoachChange

router = APIRouter()
ReadUi = Annotated[Access, Depends(require_ui_read)]
#: The element an htmx timeline update targets: then only the timeline is rendered.
TIMELINE_TARGET = "timeline"


@router.get("/projects")
async def projects(request: Request, state: State, _: ReadUi) -> Response:
    """The projects the coach has state for (`known_projects`), each a link to its page."""
    ids = await known_projects(state.redis, state.settings.names)
    return page(request, "projects.html", projects=ids)


async def _timeline(state: State, project_id: int, query: TimelineQuery) -> Timeline | None:
    """The timeline page asked for; None when the project has no event at all."""
    filters = query.filters(state.settings.taxonomy)
    limit = query.limit
    store = await state.history()
    try:
        found = await read_project(store, project_id, filters, cursor=query.cursor, limit=limit)
    except NotFound:
        return None
    return Timeline(query, found, f"/ui/projects/{project_id}")


def _wants_timeline_only(request: Request) -> bool:
    headers = request.headers
    return headers.get("hx-target") == TIMELINE_TARGET and "hx-history-restore-request" not in (
        headers
    )


async def project_page(
    request: Request,
    state: State,
    project_id: int,
    outcomes: dict[str, ActionOutcome] | None = None,
) -> Response:
    """The whole page (a strip shows its click's outcome when `outcomes` has its stage)."""
    query = TimelineQuery.of(dict(request.query_params))
    timeline = await _timeline(state, project_id, query)
    docs = await get_project(state.redis, state.settings.names, project_id)
    if docs is None and timeline is None:
        raise not_found("project", project_id)
    return page(
        request,
        "project.html",
        project_id=project_id,
        strips=strips(project_id, docs, outcomes),
        timeline=timeline,
        choices=filter_choices(state.settings.taxonomy),
        filters=query.values,
        live_url=f"/ui/projects/{project_id}/live",
    )


@router.get("/projects/{project_id}")
async def project(request: Request, state: State, project_id: ProjectId, _: ReadUi) -> Response:
    """The coach strips and the filtered timeline; 404 when neither knows the project. An
    htmx update of the timeline (``HX-Target: timeline``) gets the timeline only."""
    if _wants_timeline_only(request):
        query = TimelineQuery.of(dict(request.query_params))
        timeline = await _timeline(state, project_id, query)
        return page(request, "project_timeline.html", project_id=project_id, timeline=timeline)
    return await project_page(request, state, project_id)


@router.get("/projects/{project_id}/coach/{stage}")
async def coach_strip(
    request: Request,
    state: State,
    project_id: ProjectId,
    stage: str,
    _: ReadUi,
    seen: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    """One coach stage's strip (`get_document`, as ``GET /api/projects/{id}/coach/{stage}``);
    204 when its version is still `seen`. ETag: the version (0 when there is no document)."""
    if stage not in COACH_STAGES:
        raise not_found("stage", stage)
    doc = await get_document(state.redis, state.settings.names, project_id, stage)
    strip = Strip(project_id, stage, doc)
    headers = {"ETag": f'"{strip.version}"'}
    if seen is not None and seen == strip.version:
        return Response(status_code=204, headers={**SECURITY_HEADERS, **headers})
    response = page(request, "project_strip.html", strip=strip)
    response.headers.update(headers)
    return response


@router.get("/projects/{project_id}/live")
async def coach_live(request: Request, state: State, project_id: ProjectId, _: ReadUi) -> Response:
    """The page's event stream: ``coach-<stage>`` when a strip's document changed (from the
    process's one change-channel subscription), ``coach-resync`` when changes may have been
    missed (first of all at (re)connection)."""

    def render(item: CoachChange | Resync) -> SseEvent:
        if isinstance(item, Resync):
            return SseEvent(RESYNC_EVENT, item.reason)
        return SseEvent(coach_event(item.stage), str(item.version))

    subscription = state.live.coach(project_id)
    opening = [SseEvent(RESYNC_EVENT, "connected")]
    return sse_response(request, subscription, render, opening=opening)
