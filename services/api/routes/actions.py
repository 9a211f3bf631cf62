"""Action requests over HTTP: record a click on a coach action button, list the newest ones.

Both go through `services.coach.actions` (the dashboard's buttons too). The request names the
suggestion the user saw, never its kind or params: the server takes those from the cache.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from services.api.errors import ApiError
from services.api.models import responses
from services.api.routes.coach import CoachStage
from services.api.routes.history import ProjectId
from services.api.state import ReadAccess, State, WriteAccess
from services.coach.actions import (
    ActionRefused,
    SuggestionChanged,
    recent_actions,
    request_action,
)
from shared.models import ActionRequest, OperatorName

router = APIRouter(prefix="/api", tags=["actions"], dependencies=[ReadAccess])
write_router = APIRouter(prefix="/api", tags=["actions"], dependencies=[WriteAccess])

#: 409 only for a stale version; every other refusal names something unknown (404).
_CONFLICT = 409
_NOT_FOUND = 404


class ActionClick(BaseModel):
    """Body of ``POST .../actions``: which suggestion the user clicked, as they saw it."""

    # Strict: `"version": "3"` is refused, not coerced (the schema says integer).
    model_config = ConfigDict(extra="forbid", strict=True)

    version: int = Field(
        ge=0, le=2**63 - 1, description="Version of the document the user saw (its ETag)."
    )
    index: int = Field(ge=0, le=10_000, description="Position of the suggestion in it (from 0).")
    who: OperatorName | None = Field(
        None, description="Operator name; default RUNBUS_OPERATOR, else 'api'."
    )


class ActionList(BaseModel):
    """The newest action requests, newest first."""

    actions: list[ActionRequest] = Field(description="Action requests, newest first.")


def _refused(exc: ActionRefused) -> ApiError:
    status = _CONFLICT if isinstance(exc, SuggestionChanged) else _NOT_FOUND
    return ApiError(status, exc.code, exc.message, extra=exc.extra)


@write_router.post(
    "/projects/{project_id}/coach/{stage}/actions",
    response_model=ActionRequest,
    status_code=201,
    responses=responses(400, 401, 404, 409, 413, 422, 503),
)
async def record_action(
    state: State,
    project_id: ProjectId,
    stage: CoachStage,
    body: ActionClick,
) -> ActionRequest:
    """Record a click on suggestion `index` of the stage's document at `version`: one entry
    on the actions stream, built from the cached document. 404 project_not_found,
    stage_not_found or suggestion_not_found; 409 suggestion_changed for another version."""
    try:
        return await request_action(
            state.redis,
            state.settings.names,
            state.settings,
            project_id=project_id,
            stage=stage,
            version=body.version,
            index=body.index,
            who=body.who,
        )
    except ActionRefused as exc:
        raise _refused(exc) from exc


@router.get("/actions", response_model=ActionList, responses=responses(401, 422, 503))
async def actions(
    state: State,
    limit: Annotated[int, Query(ge=1, le=1000, description="How many, newest first.")] = 20,
) -> ActionList:
    """The newest action requests on the actions stream, newest first."""
    return ActionList(actions=await recent_actions(state.redis, state.settings.names, limit))
