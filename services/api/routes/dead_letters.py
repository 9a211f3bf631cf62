"""Dead letters and bus status: what ``runbus dlq`` and ``runbus status`` show, over HTTP.

Ids, durations and the redrive guard are checked by `services.ops` (the CLI's checks too);
the OpenAPI document shows the same rules (`DEAD_LETTER_ID_SCHEMA`, `DURATION_SCHEMA`). With
several partitions every id returned is qualified by its partition (``3:1700000000000-0``).
"""

from __future__ import annotations

from datetime import timedelta
from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from starlette.convertors import Convertor, register_url_convertor

from services.api.errors import invalid, not_found
from services.api.models import (
    AuditLog,
    BodySource,
    BodyStage,
    DeadLetterSelection,
    PurgeRequest,
    ReasonFilter,
    RedriveRequest,
    responses,
)
from services.api.state import ReadAccess, State, WriteAccess
from services.history.params import check_limit
from services.ops.deadletters import (
    MAX_AUDIT_PAGE,
    dead_letter_stats,
    get_dead_letter,
    list_dead_letters,
    purge,
    read_audit,
    redrive,
)
from services.ops.durations import DURATION_SCHEMA, parse_duration
from services.ops.filters import redrive_filter, selection_filter
from services.ops.models import (
    BusStatus,
    DeadLetterPage,
    DeadLetterRecord,
    DeadLetterStats,
    PurgeResult,
    RedriveResult,
)
from services.ops.status import bus_status
from services.ops.stream_ids import DEAD_LETTER_ID_SCHEMA, parse_dead_letter_id

# Tags go on each route, not on the router: a router's tags are added to every route's, and
# /api/status belongs under "status" alone.
router = APIRouter(prefix="/api", dependencies=[ReadAccess])
write_router = APIRouter(prefix="/api", tags=["dead letters"], dependencies=[WriteAccess])
TAGS: list[str | Enum] = ["dead letters"]


class _EntryIdPath(Convertor[str]):
    """A path segment that looks like a dead-letter id (digits-digits, perhaps after
    ``digits:``): `/dead-letters/redrive` and `/dead-letters/stats` are then never taken for
    one (GET redrive is a 405, not a 422). The exact domain is checked in the route (422
    `invalid_stream_id`)."""

    regex = "(?:[0-9]+:)?[0-9]+-[0-9]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("entry_id", _EntryIdPath())

_ID_TEXT = DEAD_LETTER_ID_SCHEMA["description"]
EntryId = Annotated[
    str | None, Query(json_schema_extra=DEAD_LETTER_ID_SCHEMA, description=_ID_TEXT)
]


def _duration(value: str | None, name: str) -> timedelta | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise invalid(f"{name}: {exc}") from exc


def _selection(body: DeadLetterSelection) -> dict[str, Any]:
    """A body's selection as the filter builders take it (durations parsed: 422 if bad)."""
    return {
        "reasons": body.reasons,
        "stages": body.stages,
        "sources": body.sources,
        "ids": body.ids,
        "since": _duration(body.since, "since"),
        "before": _duration(body.before, "before"),
    }


@router.get(
    "/dead-letters", response_model=DeadLetterPage, tags=TAGS, responses=responses(401, 422, 503)
)
async def dead_letters(
    state: State,
    reason: Annotated[
        list[ReasonFilter] | None,
        Query(description="Error code or family (invalid_reason_code); repeat for any of several."),
    ] = None,
    stage: Annotated[
        list[BodyStage] | None,
        Query(description="Rejecting stage; repeat for any of several."),
    ] = None,
    source: Annotated[
        list[BodySource] | None,
        Query(
            description="Source stream role (every partition's stream of it); repeat for any "
            "of several."
        ),
    ] = None,
    since: Annotated[
        str | None,
        Query(json_schema_extra=DURATION_SCHEMA, description="Only younger than this (15m, 2h)."),
    ] = None,
    before: Annotated[
        str | None,
        Query(json_schema_extra=DURATION_SCHEMA, description="Only older than this (1h, 7d)."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Page size.")] = 20,
    after_id: EntryId = None,
    before_id: EntryId = None,
) -> DeadLetterPage:
    """Dead letters, oldest first: the newest `limit` matches (older than `before_id`), or the
    oldest `limit` after `after_id`. Same filters as ``runbus dlq tail``, and as a redrive's
    body: a redrive with this listing's filters moves what it lists. 422
    `invalid_stage_filter` / `invalid_source_filter` for a stage or source that is none."""
    return await list_dead_letters(
        state.redis,
        state.settings.names,
        reasons=tuple(reason or ()),
        stages=tuple(stage or ()),
        sources=tuple(source or ()),
        since=_duration(since, "since"),
        before=_duration(before, "before"),
        limit=limit,
        after_id=after_id,
        before_id=before_id,
    )


@router.get(
    "/dead-letters/stats",
    response_model=DeadLetterStats,
    tags=TAGS,
    responses=responses(401, 503),
)
async def dead_letters_stats(state: State) -> DeadLetterStats:
    """Counts by reason code, family, stage and source; length and ages of the stream."""
    return await dead_letter_stats(state.redis, state.settings.names)


@router.get(
    "/dead-letters/{entry_id:entry_id}",
    response_model=DeadLetterRecord,
    tags=TAGS,
    responses=responses(401, 404, 422, 503),
)
async def dead_letter(
    state: State,
    entry_id: Annotated[str, Path(json_schema_extra=DEAD_LETTER_ID_SCHEMA, description=_ID_TEXT)],
) -> DeadLetterRecord:
    """One dead letter in full (original payload as text, or base64 when not UTF-8; a source
    field name that is not UTF-8 escaped without loss, listed in original_fields_escaped), from
    the dead-letter stream or, once retention archived it, from the archive (`archived_at` set).

    404 for a path that is not an id at all (or names a partition the bus does not have),
    422 `invalid_stream_id` for one out of range."""
    parse_dead_letter_id(entry_id, "entry_id")
    record = await get_dead_letter(state.redis, state.settings.names, entry_id, state.archive)
    if record is None:
        raise not_found("dead_letter", entry_id)
    return record


@write_router.post(
    "/dead-letters/redrive",
    response_model=RedriveResult,
    responses=responses(400, 401, 413, 422, 503),
)
async def redrive_dead_letters(state: State, body: RedriveRequest) -> RedriveResult:
    """Send matching dead letters back to their partition's incoming stream (after a taxonomy
    fix).

    Needs the bearer token when one is configured; writes an audit record. Dead letters named
    in `ids` that retention archived are sent from the archive (each once), and with
    ``"archived": true`` every archived one the filter matches. A body naming no
    filter is refused (422 `redrive_filter_required`) unless it says ``"all": true``;
    ``"since": "0s"`` is a filter (younger than nothing: none).
    """
    flt = redrive_filter(**_selection(body), everything=body.all_, archived=body.archived)
    operator = state.settings.operator or "api"
    try:
        return await redrive(
            state.redis,
            state.settings.names,
            flt,
            operator=operator,
            dry_run=body.dry_run,
            archive=state.archive,
        )
    except ValueError as exc:
        raise invalid(str(exc)) from exc


@write_router.post(
    "/dead-letters/purge",
    response_model=PurgeResult,
    responses=responses(400, 401, 413, 422, 503),
)
async def purge_dead_letters(state: State, body: PurgeRequest) -> PurgeResult:
    """Delete matching dead letters for good; writes an audit record.

    Needs the bearer token when one is configured. The body must bound the age (`before`) or
    name `ids` (422 `purge_filter_required` otherwise), as ``runbus dlq purge`` does.
    """
    flt = selection_filter(**_selection(body))
    operator = state.settings.operator or "api"
    return await purge(state.redis, state.settings.names, flt, operator=operator)


@router.get(
    "/dead-letters/audit", response_model=AuditLog, tags=TAGS, responses=responses(401, 422, 503)
)
async def dead_letters_audit(
    state: State,
    limit: Annotated[
        int,
        # Bounds for the document; `check_limit` (the CLI's rule too) answers 422.
        Query(
            json_schema_extra={"type": "integer", "minimum": 1, "maximum": MAX_AUDIT_PAGE},
            description="How many, newest first.",
        ),
    ] = 20,
) -> AuditLog:
    """The newest redrive and purge records (dashboard, CLI and API): who, when, what, how
    many. Same as ``runbus dlq audit``."""
    check_limit(limit, maximum=MAX_AUDIT_PAGE)
    return AuditLog(records=await read_audit(state.redis, state.settings.names, limit))


@router.get("/status", response_model=BusStatus, tags=["status"], responses=responses(401, 503))
async def status(state: State) -> BusStatus:
    """Every stream, group and consumer of the namespace: lengths, lag, pending, ages."""
    return await bus_status(state.redis, state.settings.names)
