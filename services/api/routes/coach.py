"""Coach Mode suggestions from the coach cache, versioned with ETags (cheap dashboard polls)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, Field

from services.api.errors import not_found
from services.api.models import responses
from services.api.routes.history import ProjectId
from services.api.state import ReadAccess, State
from services.api.versions import VersionMap
from services.coach.reads import (
    KeyReader,
    cached_document,
    cached_project,
    cached_version,
    has_documents,
    project_body,
)
from shared.models import COACH_STAGES, CoachDocument
from shared.names import Names

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


def project_etag(versions: dict[str, int]) -> str:
    """One tag for all stages: their versions in coach-stage order (0 when absent)."""
    return '"' + "-".join(str(versions.get(s, 0)) for s in COACH_STAGES) + '"'


def versioned_headers(etag: str) -> dict[str, str]:
    """Headers of a versioned answer, 200 or 304."""
    return {"ETag": etag, "Cache-Control": "no-cache"}


def _versioned(request: Request, etag: str, body: bytes) -> Response:
    """304 when the client holds `etag`, else the JSON `body` (bytes as cached: no model)."""
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=versioned_headers(etag))
    return Response(body, media_type="application/json", headers=versioned_headers(etag))


@dataclass(frozen=True, slots=True)
class StageAnswer:
    """What ``GET /api/projects/{id}/coach/{stage}`` answers for a cached document."""

    etag: str
    body: bytes | None
    """The document's JSON; None for a 304 (the client holds this version)."""


async def stage_answer(
    client: KeyReader,
    names: Names,
    project_id: int,
    stage: str,
    if_none_match: str | None,
    versions: VersionMap | None = None,
) -> StageAnswer | None:
    """The answer for one cached document, None when there is none (a 404). A poll naming the
    latest version `versions` knows is a 304 without Redis; one naming the version at the
    document's head is a 304 from that head (`cached_version`: the document is not read);
    otherwise the document's bytes, as stored. What a read saw teaches `versions`. The API
    reads through `CoalescedReads` (concurrent polls share round trips)."""
    known = versions.version(project_id, stage) if versions is not None else None
    if if_none_match and known is not None and etag_matches(if_none_match, f'"{known}"'):
        return StageAnswer(f'"{known}"', None)
    token = versions.begin() if versions is not None else 0
    if if_none_match and known is None:
        version = await cached_version(client, names, project_id, stage)
        if version is not None:
            if versions is not None:
                versions.learn(project_id, stage, version, token)
            if etag_matches(if_none_match, f'"{version}"'):
                return StageAnswer(f'"{version}"', None)
    doc = await cached_document(client, names, project_id, stage)
    if doc is None:
        return None
    if versions is not None:
        versions.learn(project_id, stage, doc.version, token)
    etag = f'"{doc.version}"'
    return StageAnswer(etag, None if etag_matches(if_none_match, etag) else doc.body)


@router.get(
    "/projects/{project_id}/coach",
    response_model=CoachProject,
    responses=responses(304, 401, 404, 422, 503),
)
async def coach_project(state: State, request: Request, project_id: ProjectId) -> Response:
    """Every coach stage's suggestions. ETag: the stages' versions; If-None-Match -> 304."""
    docs = await cached_project(state.redis, state.settings.names, project_id)
    if docs is None:
        raise not_found("project", project_id)
    etag = project_etag({stage: doc.version for stage, doc in docs.items()})
    return _versioned(request, etag, project_body(project_id, docs))


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
    """One coach stage's suggestions. ETag: the document's version; If-None-Match -> 304
    (decided from the version at the document's head: the document is not read). The hot path
    of this route is answered before routing too (`services.api.fastpath`), the same way."""
    if stage not in COACH_STAGES:
        raise not_found("stage", stage)
    client, names = state.redis, state.settings.names
    inm = request.headers.get("if-none-match")
    answer = await stage_answer(state.reads, names, project_id, stage, inm, state.live.versions)
    if answer is None:
        if not await has_documents(client, names, project_id):
            raise not_found("project", project_id)
        raise not_found("stage", stage)
    headers = versioned_headers(answer.etag)
    if answer.body is None:
        return Response(status_code=304, headers=headers)
    return Response(answer.body, media_type="application/json", headers=headers)
