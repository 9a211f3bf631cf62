"""Run and project timelines from the history store (the Pulse run-detail API)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from services.api.errors import invalid, not_found
from services.api.models import EventsPage, responses
from services.api.state import ReadAccess, State
from services.history.base import MAX_PAGE, ProjectFilter
from services.history.reads import parse_when, project_events, run_events
from shared.taxonomy import PULSE_SEVERITIES, SEVERITIES, STAGES

router = APIRouter(prefix="/api", tags=["history"], dependencies=[ReadAccess])

Cursor = Annotated[str | None, Query(description="next_cursor of the previous page.")]
ALL_SEVERITIES: tuple[str, ...] = tuple(dict.fromkeys(SEVERITIES + PULSE_SEVERITIES))
#: Largest project id the stores can hold (a signed 64-bit integer).
MAX_PROJECT_ID = 2**63 - 1
ProjectId = Annotated[int, Path(ge=0, le=MAX_PROJECT_ID, description="Project id.")]


@router.get(
    "/runs/{run_id:path}/events", response_model=EventsPage, responses=responses(401, 404, 422, 503)
)
async def run_timeline(
    state: State,
    run_id: Annotated[str, Path(max_length=256, description="Run id.")],
    children: Annotated[bool, Query(description="Include descendant runs.")] = False,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page size.")] = 1000,
) -> dict[str, Any]:
    """A run's events (both dialects) in event-time order; its children's too with
    ``?children=true``. 404 when the run has no event."""
    store = await state.history()
    page = await run_events(store, run_id, children=children, cursor=cursor, limit=limit)
    if not page.rows and cursor is None:
        raise not_found("run", run_id)
    return page.to_dict()


def _when(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_when(value)
    except ValueError as exc:
        raise invalid(f"{name}: {exc}") from exc


def _project_filter(
    stage: str | None,
    severity: str | None,
    reason: str | None,
    event_type: str | None,
    since: str | None,
    until: str | None,
) -> ProjectFilter:
    if stage is not None and stage not in STAGES:
        raise invalid(f"stage must be one of {', '.join(STAGES)}")
    if severity is not None and severity not in {*SEVERITIES, *PULSE_SEVERITIES}:
        raise invalid(
            f"severity must be one of {', '.join(dict.fromkeys(SEVERITIES + PULSE_SEVERITIES))}"
        )
    return ProjectFilter(stage=stage, severity=severity, reason_code=reason,
                         event_type=event_type, since=_when(since, "since"),
                         until=_when(until, "until"))  # fmt: skip


@router.get(
    "/projects/{project_id}/events",
    response_model=EventsPage,
    responses=responses(401, 404, 422, 503),
)
async def project_timeline(
    state: State,
    project_id: ProjectId,
    stage: Annotated[str | None, Query(description="One of the nine stages.")] = None,
    severity: Annotated[str | None, Query(description="A severity of either dialect.")] = None,
    reason: Annotated[str | None, Query(description="Reason code.")] = None,
    event_type: Annotated[str | None, Query(description="Pulse event type.")] = None,
    since: Annotated[str | None, Query(description="ISO time or age (2h, 7d); inclusive.")] = None,
    until: Annotated[str | None, Query(description="ISO time or age; exclusive.")] = None,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page size.")] = 100,
) -> dict[str, Any]:
    """A project's events in event-time order, filtered. 404 when the project has no event."""
    filters = _project_filter(stage, severity, reason, event_type, since, until)
    store = await state.history()
    page = await project_events(store, project_id, filters, cursor=cursor, limit=limit)
    if not page.rows and cursor is None:
        known = await project_events(store, project_id, None, limit=1)
        if not known.rows:
            raise not_found("project", project_id)
    return page.to_dict()
