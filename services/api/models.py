"""Response bodies of the HTTP API (what the OpenAPI document shows)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema

from services.ops.durations import DURATION_SCHEMA
from services.ops.filters import SOURCE_KINDS, STAGE_NAMES
from services.ops.logic import REASON_FILTER_PATTERN
from services.ops.models import AuditRecord
from services.ops.stream_ids import DEAD_LETTER_ID_SCHEMA

#: A dead-letter id in a request body: the schema shows the rule; the route checks it (422
#: `invalid_stream_id`, the code the CLI prints too).
BodyStreamId = Annotated[str, WithJsonSchema(DEAD_LETTER_ID_SCHEMA)]
BodyDuration = Annotated[str | None, WithJsonSchema({"anyOf": [DURATION_SCHEMA, {"type": "null"}]})]


class ErrorBody(BaseModel):
    """Every error response."""

    model_config = ConfigDict(extra="allow")

    error: str = Field(description="Stable error code, e.g. run_not_found, invalid_event.")
    message: str = Field(description="Human explanation.")


class InvalidEventBody(ErrorBody):
    """422 from ``POST /api/events``: every contract error code of the event."""

    errors: list[str] = Field(description="The contract's error codes (shared.validation).")


class HistoryEvent(BaseModel):
    """One stored event. BrewSLM rows carry stage/reason_code/actor/summary/payload; Pulse rows
    carry event_type/message/details."""

    model_config = ConfigDict(extra="allow")

    id: int = Field(description="Row id in the history.")
    event_id: str = Field(description="The event's idempotency key.")
    dialect: str = Field(description="brewslm or pulse.")
    project_id: int | None = Field(description="Project, when known.")
    run_id: str = Field(description="Run.")
    parent_run_id: str | None = Field(description="Parent run when nested.")
    severity: str = Field(description="Severity in the event's dialect.")
    ts: str = Field(description="Event time (producer's clock), ISO 8601.")
    created_at: str = Field(description="Insert time, ISO 8601.")


class EventsPage(BaseModel):
    """A page of a timeline, in event-time order."""

    events: list[HistoryEvent] = Field(description="The events of this page.")
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null at end.")


class EventAccepted(BaseModel):
    """202 from ``POST /api/events``: the event is on the incoming stream."""

    entry_id: str = Field(description="Entry id on the incoming stream.")
    event_id: str = Field(description="The event's id (given, or generated).")


class Health(BaseModel):
    """``GET /healthz``."""

    status: str = Field(description="Always 'ok' while the process serves requests.")
    instance: str = Field(
        description="Id of the running system (RUNBUS_INSTANCE_ID): `runbus run all` waits "
        "for its own before saying it is running."
    )


class Readiness(BaseModel):
    """``GET /readyz``: 200 when both dependencies answer, 503 otherwise."""

    status: str = Field(description="ready or not_ready.")
    redis: bool = Field(description="Redis answered PING.")
    database: bool = Field(description="The history database answered.")
    redis_full: bool = Field(
        False,
        description="Redis is at its maxmemory: it refuses new entries (POST /api/events "
        "answers 503 redis_full) until the stages' moves and trims free memory. Reads work.",
    )
    lag: int | None = Field(
        None, description="Backpressure: the largest lag (entries not yet delivered) of a group."
    )
    lag_s: float | None = Field(
        None, description="Backpressure: how far behind the furthest group is, in seconds."
    )


#: An error code or code family to filter dead letters by.
ReasonFilter = Annotated[str, StringConstraints(pattern=REASON_FILTER_PATTERN)]
#: The JSON schemas of a stage and a source filter: the document shows the choices; the
#: library's check (`services.ops.filters`, the CLI's too) answers 422 with its own code.
STAGE_SCHEMA: dict[str, Any] = {"type": "string", "enum": list(STAGE_NAMES)}
SOURCE_SCHEMA: dict[str, Any] = {"type": "string", "enum": [k.value for k in SOURCE_KINDS]}
BodyStage = Annotated[str, WithJsonSchema(STAGE_SCHEMA)]
BodySource = Annotated[str, WithJsonSchema(SOURCE_SCHEMA)]

#: At least one filter, or ``"all": true``: a zero duration counts (``"since": "0s"``).
_REDRIVE_GUARD: list[Any] = [
    {"required": ["reasons"], "properties": {"reasons": {"minItems": 1}}},
    {"required": ["ids"], "properties": {"ids": {"minItems": 1}}},
    {"required": ["stages"], "properties": {"stages": {"minItems": 1}}},
    {"required": ["sources"], "properties": {"sources": {"minItems": 1}}},
    {"required": ["since"], "properties": {"since": {"type": "string"}}},
    {"required": ["before"], "properties": {"before": {"type": "string"}}},
    {"required": ["all"], "properties": {"all": {"const": True}}},
]


class DeadLetterSelection(BaseModel):
    """Which dead letters a redrive or a purge acts on: the listing's filters, and ids.

    Strict: `"dry_run": 0` or `"all": "yes"` are refused, not coerced (the schema says bool).
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    reasons: list[ReasonFilter] = Field(default_factory=list, description="Codes or code families.")
    ids: list[BodyStreamId] = Field(default_factory=list, description="Exact dead-letter ids.")
    stages: list[BodyStage] = Field(
        default_factory=list, description="Rejecting stages (validator, persister, coach)."
    )
    sources: list[BodySource] = Field(
        default_factory=list,
        description="Source stream roles (events, valid): every partition's stream of each.",
    )
    since: BodyDuration = Field(None, description="Only younger than this (30s, 15m, 2h, 7d).")
    before: BodyDuration = Field(None, description="Only older than this (30s, 15m, 2h, 7d).")


class RedriveRequest(DeadLetterSelection):
    """Body of ``POST /api/dead-letters/redrive``: which dead letters to send back."""

    # The anyOf is the redrive guard (services.ops.filters.redrive_filter) as the document says it.
    model_config = ConfigDict(json_schema_extra={"anyOf": _REDRIVE_GUARD})

    all_: bool = Field(
        False,
        alias="all",
        description="Every dead letter: required when no other filter is given.",
    )
    dry_run: bool = Field(False, description="Count only; move nothing.")
    archived: bool = Field(
        False,
        description="Also the dead letters retention archived (each sent from the archive "
        "once); ids are looked for there anyway.",
    )


class PurgeRequest(DeadLetterSelection):
    """Body of ``POST /api/dead-letters/purge``: which dead letters to delete for good."""

    # The guard (services.ops.deadletters.check_purge): an age bound or explicit ids.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["before"], "properties": {"before": {"type": "string"}}},
                {"required": ["ids"], "properties": {"ids": {"minItems": 1}}},
            ]
        },
    )


class AuditLog(BaseModel):
    """The newest redrive and purge records, newest first."""

    records: list[AuditRecord] = Field(description="Audit records (dashboard, CLI and API).")


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI descriptions of the error responses a route may give."""
    text = {
        304: "Not modified (If-None-Match matched the ETag).",
        400: "The body cannot be decoded (not UTF-8): invalid_body.",
        401: "Missing or wrong bearer token.",
        404: "Unknown project, run, stage or dead letter.",
        405: "Method not allowed (the Allow header lists the allowed ones).",
        409: "Changed since it was read (suggestion_changed: `version` is the current one).",
        413: "Request body too large.",
        422: (
            "Invalid parameters: `invalid_parameter` for a value out of its rule (a limit out "
            "of range, a stage outside the taxonomy: the code and message the CLI prints for "
            "the same rule), `invalid_request` for one outside the schema's type, or the "
            "route's own code (`invalid_stream_id`, `redrive_filter_required`, ...)."
        ),
        503: "Redis or the database is not reachable.",
    }
    return {
        code: {"description": text[code], **({} if code == 304 else {"model": ErrorBody})}
        for code in codes
    }
