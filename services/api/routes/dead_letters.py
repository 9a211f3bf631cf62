"""Dead letters and bus status: what ``runbus dlq`` and ``runbus status`` show, over HTTP."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query

from services.api.errors import invalid, not_found
from services.api.models import RedriveRequest, responses
from services.api.state import ReadAccess, State, WriteAccess
from services.ops.deadletters import (
    dead_letter_stats,
    get_dead_letter,
    list_dead_letters,
    redrive,
)
from services.ops.durations import parse_duration
from services.ops.models import (
    BusStatus,
    DeadLetterFilter,
    DeadLetterPage,
    DeadLetterRecord,
    DeadLetterStats,
    RedriveResult,
)
from services.ops.status import bus_status

router = APIRouter(prefix="/api", tags=["dead letters"], dependencies=[ReadAccess])
write_router = APIRouter(prefix="/api", tags=["dead letters"], dependencies=[WriteAccess])

ENTRY_ID = r"^\d+-\d+$"
EntryId = Annotated[str | None, Query(pattern=ENTRY_ID, description="A dead-letter id.")]


def _duration(value: str | None, name: str) -> timedelta | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise invalid(f"{name}: {exc}") from exc


@router.get("/dead-letters", response_model=DeadLetterPage, responses=responses(401, 422, 503))
async def dead_letters(
    state: State,
    reason: Annotated[
        list[str] | None,
        Query(description="Error code or family (invalid_reason_code); repeat for any of several."),
    ] = None,
    since: Annotated[str | None, Query(description="Only younger than this (15m, 2h, 7d).")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Page size.")] = 20,
    after_id: EntryId = None,
    before_id: EntryId = None,
) -> DeadLetterPage:
    """Dead letters, oldest first: the newest `limit` matches (older than `before_id`), or the
    oldest `limit` after `after_id`. Same filters as ``runbus dlq tail``."""
    return await list_dead_letters(
        state.redis,
        state.settings.names,
        reasons=tuple(reason or ()),
        since=_duration(since, "since"),
        limit=limit,
        after_id=after_id,
        before_id=before_id,
    )


@router.get("/dead-letters/stats", response_model=DeadLetterStats, responses=responses(401, 503))
async def dead_letters_stats(state: State) -> DeadLetterStats:
    """Counts by reason code, family, stage and source; length and ages of the stream."""
    return await dead_letter_stats(state.redis, state.settings.names)


@router.get(
    "/dead-letters/{entry_id}",
    response_model=DeadLetterRecord,
    responses=responses(401, 404, 422, 503),
)
async def dead_letter(
    state: State,
    entry_id: Annotated[str, Path(pattern=ENTRY_ID, description="Dead-letter id.")],
) -> DeadLetterRecord:
    """One dead letter in full (original payload as text, or base64 when not UTF-8)."""
    record = await get_dead_letter(state.redis, state.settings.names, entry_id)
    if record is None:
        raise not_found("dead_letter", entry_id)
    return record


@write_router.post(
    "/dead-letters/redrive", response_model=RedriveResult, responses=responses(401, 422, 503)
)
async def redrive_dead_letters(state: State, body: RedriveRequest) -> RedriveResult:
    """Send matching dead letters back to the incoming stream (after a taxonomy fix).

    Needs the bearer token when one is configured; writes an audit record.
    """
    if not (body.reasons or body.ids or body.since or body.before):
        raise invalid("name reasons, ids, since or before: a redrive never takes everything")
    since, before = _duration(body.since, "since"), _duration(body.before, "before")
    flt = DeadLetterFilter(
        reasons=tuple(body.reasons),
        ids=tuple(body.ids),
        since_s=since.total_seconds() if since else None,
        before_s=before.total_seconds() if before else None,
    )
    operator = state.settings.operator or "api"
    try:
        return await redrive(
            state.redis, state.settings.names, flt, operator=operator, dry_run=body.dry_run
        )
    except ValueError as exc:
        raise invalid(str(exc)) from exc


@router.get("/status", response_model=BusStatus, tags=["status"], responses=responses(401, 503))
async def status(state: State) -> BusStatus:
    """Every stream, group and consumer of the namespace: lengths, lag, pending, ages."""
    return await bus_status(state.redis, state.settings.names)
