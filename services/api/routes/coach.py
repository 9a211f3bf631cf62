"""Coach Mode suggestions from the coach cache, versioned with ETags (cheap dashboard polls)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from services.api.errors import not_found
from services.api.models import responses
from services.api.routes.history import ProjectId
from services.api.state import ReadAccess, State
from services.coach.reads import get_document, get_project
from shared.models import COACH_STAGES, CoachDocument

router = APIRouter(prefix="/api", tags=["coach"], dependencies=[ReadAccess])
#: A coach stage in a path: the document lists the five; the route's own check answers 404.
CoachStage = Annotated[
    str,
    Path(
        json_schema_extra={"enum": list(COACH_STAGES)},
        description="Coach stage (404 stage_not_found for any other).",
    ),
]


class CoachProject(BaseModel):
    """Every cached coach document of a project."""

    project_id: int = Field(description="Project id.")
    stages: dict[str, CoachDocument] = Field(description="Coach stage -> its document.")


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """True when an If-None-Match header names `etag` (or is ``*``); weak tags compare too."""
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


def project_etag(docs: dict[str, CoachDocument]) -> str:
    """One tag for all stages: their versions in coach-stage order (0 when absent)."""
    versions = [str(docs[s].version) if s in docs else "0" for s in COACH_STAGES]
    return '"' + "-".join(versions) + '"'


def _versioned(request: Request, etag: str, body: BaseModel) -> Response:
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return JSONResponse(body.model_dump(mode="json"), headers=headers)


@router.get(
    "/projects/{project_id}/coach",
    response_model=CoachProject,
    responses=responses(304, 401, 404, 422, 503),
)
async def coach_project(state: State, request: Request, project_id: ProjectId) -> Response:
    """Every coach stage's suggestions. ETag: the stages' versions; If-None-Match -> 304."""
    docs = await get_project(state.redis, state.settings.names, project_id)
    if docs is None:
        raise not_found("project", project_id)
    return _versioned(request, project_etag(docs), CoachProject(project_id=project_id, stages=docs))


@router.get(
    "/projects/{project_id}/coach/{stage}",
    response_model=CoachDocument,
    responses=responses(304, 401, 404, 422, 503),
)
async def coach_stage(
    state: State,
    request: Request,
    project_id: ProjectId,
    stage: CoachStage,
) -> Response:
    """One coach stage's suggestions. ETag: the document's version; If-None-Match -> 304."""
    if stage not in COACH_STAGES:
        raise not_found("stage", stage)
    names = state.settings.names
    doc = await get_document(state.redis, names, project_id, stage)
    if doc is None:
        if await get_project(state.redis, names, project_id) is None:
            raise not_found("project", project_id)
        raise not_found("stage", stage)
    return _versioned(request, f'"{doc.version}"', doc)
