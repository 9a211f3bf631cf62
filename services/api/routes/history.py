"""Run and project timelines from the history store (the Pulse run-detail API).

The parameter rules are `services.history.params` (what `runbus history` checks too); the
OpenAPI document shows their enums and bounds.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from services.api.models import EventsPage, responses
from services.api.state import ReadAccess, State
from services.history.base import CURSOR_PATTERN, MAX_PAGE, Page
from services.history.family import CHILDREN_PAGE, MAX_CHILDREN, RunFamily
from services.history.params import (
    ALL_SEVERITIES,
    MIN_PAGE,
    PROJECT_PAGE,
    RUN_PAGE,
    SEED_PULSE_TYPES,
    check_limit,
    project_filter,
)
from services.history.reads import AGE_PATTERN, read_family, read_project, read_run
from shared.taxonomy import STAGES

router = APIRouter(prefix="/api", tags=["history"], dependencies=[ReadAccess])

Cursor = Annotated[
    str | None,
    Query(
        json_schema_extra={"type": "string", "pattern": CURSOR_PATTERN},
        description="next_cursor of the previous page (<micros>.<row id>).",
    ),
]
#: Largest project id the stores can hold (a signed 64-bit integer).
MAX_PROJECT_ID = 2**63 - 1
ProjectId = Annotated[int, Path(ge=0, le=MAX_PROJECT_ID, description="Project id.")]
#: An ISO 8601 time (RFC 3339) or an age like 2h, 7d: what `services.history.reads.parse_when`
#: reads.
_WHEN = {
    "anyOf": [
        {"type": "string", "format": "date-time"},
        {"type": "string", "pattern": AGE_PATTERN},
    ]
}


def _limit(maximum: int = MAX_PAGE, description: str = "Page size.") -> Any:
    # The bounds are for the document; the route's own check (`check_limit`, shared with the
    # CLI) answers 422 `invalid_parameter`, as `runbus history` says it.
    schema = {"type": "integer", "minimum": MIN_PAGE, "maximum": maximum}
    return Query(json_schema_extra=schema, description=description)


def _enum(values: tuple[str, ...], description: str) -> Any:
    # The enum is for the document; the route's own check (shared with the CLI) answers 422.
    return Query(json_schema_extra={"enum": list(values)}, description=description)


def page_response(page: Page) -> Response:
    """A timeline page encoded straight from its rows (`Page.to_json`): a 1000-event page
    through `EventsPage` (the document's schema) would be validated and encoded again."""
    return Response(page.to_json(), media_type="application/json")


@router.get(
    "/runs/{run_id:path}/events", response_model=EventsPage, responses=responses(401, 404, 422, 503)
)
async def run_timeline(
    state: State,
    run_id: Annotated[str, Path(min_length=1, max_length=256, description="Run id.")],
    children: Annotated[bool, Query(description="Include descendant runs.")] = False,
    cursor: Cursor = None,
    limit: Annotated[int, _limit()] = RUN_PAGE,
) -> Response:
    """A run's events (both dialects) in event-time order; its children's too with
    ``?children=true``. 404 `run_not_found` when the run has no event."""
    check_limit(limit)
    store = await state.history()
    page = await read_run(store, run_id, children=children, cursor=cursor, limit=limit)
    return page_response(page)


@router.get(
    "/runs/{run_id:path}/family", response_model=RunFamily, responses=responses(401, 404, 422, 503)
)
async def run_family(
    state: State,
    run_id: Annotated[str, Path(min_length=1, max_length=256, description="Run id.")],
    limit: Annotated[int, _limit(MAX_CHILDREN, "Direct children listed at most.")] = CHILDREN_PAGE,
) -> RunFamily:
    """A run's parent chain (parent first; cycle-safe, bounded) and its direct children, each
    with its first and last event time. Index reads only. 404 `run_not_found` when the run has
    no event."""
    check_limit(limit, maximum=MAX_CHILDREN)
    store = await state.history()
    return await read_family(store, run_id, children_limit=limit)


@router.get(
    "/projects/{project_id}/events",
    response_model=EventsPage,
    responses=responses(401, 404, 422, 503),
)
async def project_timeline(
    state: State,
    project_id: ProjectId,
    stage: Annotated[str | None, _enum(STAGES, "BrewSLM stage.")] = None,
    severity: Annotated[str | None, _enum(ALL_SEVERITIES, "Severity of either dialect.")] = None,
    reason: Annotated[str | None, Query(description="Reason code.")] = None,
    event_type: Annotated[
        str | None,
        _enum(SEED_PULSE_TYPES, "Pulse event type (the seed's; a configured taxonomy adds more)."),
    ] = None,
    since: Annotated[
        str | None,
        Query(json_schema_extra=_WHEN, description="ISO time or age (2h, 7d); inclusive."),
    ] = None,
    until: Annotated[
        str | None, Query(json_schema_extra=_WHEN, description="ISO time or age; exclusive.")
    ] = None,
    cursor: Cursor = None,
    limit: Annotated[int, _limit()] = PROJECT_PAGE,
) -> Response:
    """A project's events in event-time order, filtered. 404 `project_not_found` when the
    project has no event."""
    check_limit(limit)
    filters = project_filter(
        stage=stage,
        severity=severity,
        reason=reason,
        event_type=event_type,
        since=since,
        until=until,
        taxonomy=state.settings.taxonomy,
    )
    store = await state.history()
    page = await read_project(store, project_id, filters, cursor=cursor, limit=limit)
    return page_response(page)
