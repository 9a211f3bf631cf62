"""Pydantic v2 models of everything that travels on the bus or sits in its caches.

Two event dialects share the bus: BrewSLM's `RunEvent` (stage / severity / reason code) and
Pulse's `PulseEvent` (dot-namespaced event type). The validator wraps an accepted event in a
`ValidEnvelope`; a rejected entry becomes a `DeadLetter`. Coach Mode writes `CoachDocument`s;
a click on one of their action buttons becomes an `ActionRequest` on the actions stream.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

EVENT_ID_PATTERN = r"^[A-Za-z0-9._:\-]{1,128}$"
#: Event times outside this window are a schema violation (they break partitions and ordering).
TS_MIN = datetime(1970, 1, 1, tzinfo=UTC)
TS_MAX = datetime(2100, 1, 1, tzinfo=UTC)

Dialect = Literal["brewslm", "pulse"]
EventId = Annotated[str, Field(pattern=EVENT_ID_PATTERN)]
RunId = Annotated[str, Field(min_length=1, max_length=256)]


def aware_utc(value: datetime) -> datetime:
    """An event time as the models keep it: aware UTC (naive means UTC), within 1970..2100.

    Raises ValueError outside that window.
    """
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    if aware.tzinfo is not UTC:
        try:
            aware = aware.astimezone(UTC)
        except OverflowError:  # beyond year 1 or 9999 in UTC (e.g. 9999-12-31T23:59-14:00)
            raise ValueError("timestamp outside 1970..2100") from None
    if not TS_MIN <= aware < TS_MAX:
        raise ValueError("timestamp outside 1970..2100")
    return aware


class RunEvent(BaseModel):
    """BrewSLM's canonical RunEvent row (seed 000), plus an event id for idempotency."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dialect: Literal["brewslm"] = Field("brewslm", description="Always 'brewslm'.")
    event_id: EventId | None = Field(
        None, description="Idempotency key; derived from the source entry id when absent."
    )
    project_id: StrictInt = Field(ge=0, le=2**63 - 1, description="Project the event belongs to.")
    run_id: RunId = Field(description='"<stage>-<id>" by convention, e.g. exp-42.')
    parent_run_id: RunId | None = Field(None, description="Parent op when nested.")
    stage: str = Field(description="One of the nine canonical stages.")
    severity: str = Field(description="info | warning | error | critical.")
    reason_code: str | None = Field(None, description="Taxonomy code; required on error/critical.")
    actor: Annotated[str, Field(min_length=1, max_length=256)] = Field(
        "system", description='"system" or the operator\'s user id.'
    )
    summary: Annotated[str, Field(max_length=4096)] | None = Field(
        None, description="One-line human-readable label."
    )
    payload: dict[str, Any] = Field(default_factory=dict, description="Free-form details.")
    ts: datetime = Field(description="Wall-clock time of the event (producer's clock).")

    _ts_utc = field_validator("ts")(aware_utc)


class PulseEvent(BaseModel):
    """Pulse's run-event record (seed 004), plus an event id and optional project/parent."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dialect: Literal["pulse"] = Field("pulse", description="Always 'pulse'.")
    event_id: EventId | None = Field(
        None, description="Idempotency key; derived from the source entry id when absent."
    )
    run_id: RunId = Field(description="Run identity.")
    parent_run_id: RunId | None = Field(None, description="Parent run, for run-detail children.")
    project_id: StrictInt | None = Field(
        None, ge=0, le=2**63 - 1, description="Optional owning project."
    )
    event_type: str = Field(description="Catalog entry, e.g. run.completed.")
    severity: str = Field(description="info | warn | error; must match the catalog.")
    message: Annotated[str, Field(max_length=4096)] = Field("", description="Human-readable text.")
    details: dict[str, Any] | None = Field(None, description="Event-specific JSON.")
    created_at: datetime = Field(description="Event timestamp.")

    _ts_utc = field_validator("created_at")(aware_utc)


Event = RunEvent | PulseEvent


def event_time(event: Event) -> datetime:
    """The producer's time of an event, whatever its dialect."""
    return event.ts if isinstance(event, RunEvent) else event.created_at


class ValidEnvelope(BaseModel):
    """What the validator writes to the valid stream: the event plus where and when."""

    model_config = ConfigDict(frozen=True)

    event_id: str = Field(description="The event's id (given or derived).")
    dialect: Dialect = Field(description="brewslm or pulse.")
    taxonomy_version: str = Field(description="Taxonomy version the event was checked against.")
    accepted_at: datetime = Field(description="When the validator accepted it.")
    source_id: str = Field(description="Entry id on the incoming stream.")
    event: dict[str, Any] = Field(description="The normalized event (JSON mode dump).")


# --- Coach Mode ---------------------------------------------------------------------------


class NavigateAction(BaseModel):
    """Route the UI somewhere (params: target, ...)."""

    kind: Literal["navigate"] = "navigate"
    label: str = Field(description="Button text.")
    params: dict[str, Any] = Field(default_factory=dict, description="e.g. {'target': ...}.")


class RunPlaybookAction(BaseModel):
    """Trigger a generation playbook (params: playbook, rows, ...)."""

    kind: Literal["run_playbook"] = "run_playbook"
    label: str = Field(description="Button text.")
    params: dict[str, Any] = Field(default_factory=dict, description="e.g. {'playbook': ...}.")


class AugmentFromClusterAction(BaseModel):
    """Open a failure cluster as a data source (params: cluster_id, ...)."""

    kind: Literal["augment_from_cluster"] = "augment_from_cluster"
    label: str = Field(description="Button text.")
    params: dict[str, Any] = Field(default_factory=dict, description="e.g. {'cluster_id': ...}.")


Action = Annotated[
    NavigateAction | RunPlaybookAction | AugmentFromClusterAction, Field(discriminator="kind")
]
COACH_STAGES: tuple[str, ...] = ("data", "cleaning", "gold_set", "training", "eval")
CoachStage = Literal["data", "cleaning", "gold_set", "training", "eval"]


class Suggestion(BaseModel):
    """One Coach Mode suggestion, as the seed's canonical shape."""

    severity: Literal["info", "warning", "critical"] = Field(description="Strip colour.")
    title: str = Field(description="Headline, e.g. 'Your gold set has 78 rows'.")
    body: str = Field(description="Why, and what the action will do.")
    action: Action = Field(description="One of the three action kinds.")


class CoachDocument(BaseModel):
    """The cached suggestions of one (project, coach stage)."""

    project_id: int = Field(description="Project id.")
    stage: CoachStage = Field(description="Coach stage.")
    version: int = Field(description="Increases on every change of the suggestions.")
    computed_at: datetime = Field(description="When the suggestions last changed.")
    source_id: str | None = Field(description="Last valid-stream entry id that touched it.")
    taxonomy_version: str = Field(description="Taxonomy in force when computed.")
    suggestions: list[Suggestion] = Field(description="Ordered, most severe first.")


class CoachChange(BaseModel):
    """What the coach publishes on its changes channel when a cached document changes."""

    project_id: int = Field(description="Project id.")
    stage: CoachStage = Field(description="Coach stage whose document changed.")
    version: int = Field(description="The document's new version (its ETag).")


ActionKind = Literal["navigate", "run_playbook", "augment_from_cluster"]
#: Who asked: an operator name, as the client gives it (the API token authenticates the client).
OperatorName = Annotated[str, Field(min_length=1, max_length=256)]


class ActionRequest(BaseModel):
    """A click on a coach suggestion's action button, recorded for the platform to carry out.

    Built by the server from the cached document the user saw (never from what the client
    sends as kind or params): the platform may trust `kind`, `label` and `params` as the coach's.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    request_id: str = Field(description="Unique id of this request (32 hex digits): dedupe on it.")
    who: OperatorName = Field(description="Operator who clicked, as the client names them.")
    requested_at: datetime = Field(description="When the click was recorded (UTC).")
    project_id: int = Field(description="Project of the suggestion.")
    stage: CoachStage = Field(description="Coach stage of the suggestion.")
    title: str = Field(description="The suggestion's title, as the user saw it.")
    version: int = Field(description="Version of the coach document the user saw.")
    index: int = Field(ge=0, description="Position of the suggestion in that document (from 0).")
    kind: ActionKind = Field(description="The action's kind: what the platform should do.")
    label: str = Field(description="The action's button text.")
    params: dict[str, Any] = Field(description="The action's params, as the coach wrote them.")
    url: str | None = Field(
        None,
        description="navigate only: the URL built from RUNBUS_ACTION_URL_TEMPLATE, if any "
        "(http or https).",
    )

    _requested_at_utc = field_validator("requested_at")(aware_utc)


# --- Dead letters -------------------------------------------------------------------------


class DeadLetter(BaseModel):
    """A rejected entry: its original bytes unchanged, and everything needed to act on it.

    Modelled on Kafka Connect's error headers and EventBridge's DLQ attributes: every reason,
    where it came from, who rejected it, how often it was delivered.
    """

    errors: list[str] = Field(
        description="Every stable error code, not only the first, e.g. invalid_reason_code:foo."
    )
    message: str = Field(description="Human explanation.")
    original: bytes = Field(description="The source entry's __data__, unchanged.")
    original_fields: dict[str, bytes] = Field(
        default_factory=dict, description="Other fields of the source entry, unchanged."
    )
    source_stream: str = Field(description="Stream the entry was read from.")
    source_id: str = Field(description="Its entry id there.")
    group: str = Field(description="Consumer group that rejected it.")
    consumer: str = Field(description="Consumer (process) that rejected it.")
    stage: str = Field(description="Pipeline stage that rejected it: validator, persister, ...")
    delivery_count: int = Field(description="Deliveries of the entry before it was rejected.")
    first_seen: datetime = Field(description="When the bus first saw the entry (its id time).")
    dead_at: datetime = Field(description="When it was dead-lettered.")
    taxonomy_version: str = Field(description="Taxonomy in force when rejected.")
    service_version: str = Field(description="runbus version of the rejecting service.")
    hint: dict[str, str] = Field(
        default_factory=dict,
        description="Best-effort fields of the body (stage, event_type, project_id, run_id...).",
    )
