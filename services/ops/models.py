"""What the ops functions return: JSON-safe pydantic models shared by the CLI and the HTTP API.

Bytes never appear here: `DeadLetterRecord` is `shared.models.DeadLetter` with its bytes (the
original payload, each original field) as text when valid UTF-8, else as base64 with a flag
saying so, and each original field's name that is not UTF-8 escaped, with a list saying which
(`services.ops.payload`), plus its id and whether it was readable.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from services.ops.payload import view_fields
from shared.models import DeadLetter
from shared.names import StreamKind

#: `DeadLetter`'s fields as the view gives them (see `services.ops.payload`), after the id.
_DeadLetterFields = create_model(
    "_DeadLetterFields",
    id=(str, Field(description="Entry id on the dead-letter stream.")),
    **view_fields(DeadLetter),
)


class DeadLetterRecord(_DeadLetterFields):
    """One dead letter in full: its id on the dead-letter stream and every field it carries."""

    model_config = ConfigDict(frozen=True)

    readable: bool = Field(
        True, description="False when the entry is not a well-formed dead letter (shown anyway)."
    )
    archived_at: datetime | None = Field(
        None,
        description="When retention archived it: it is no longer on the dead-letter stream, "
        "only in the history database's archive. Null while it is on the stream.",
    )
    archive_redriven: bool = Field(
        False, description="True when a redrive already sent it back from the archive."
    )

    if TYPE_CHECKING:  # the fields are built from `DeadLetter` at import: unknown to mypy

        def __getattr__(self, name: str) -> Any: ...

    def original_bytes(self) -> bytes:
        """The original payload as the bytes it was."""
        original: str = self.original
        return base64.b64decode(original) if self.original_base64 else original.encode()


class DeadLetterLine(BaseModel):
    """The one-line summary of a dead letter that `tail` prints (no payload)."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="Entry id on the dead-letter stream.")
    dead_at: datetime = Field(description="When it was dead-lettered.")
    errors: list[str] = Field(description="Every error code.")
    stage: str = Field(description="Pipeline stage that rejected it.")
    source_stream: str = Field(description="Stream the entry was read from.")
    source_id: str = Field(description="Its entry id there.")
    event_kind: str = Field(description="The event's stage (BrewSLM) or event type (Pulse).")
    project_id: str = Field(description="The event's project, when readable.")
    run_id: str = Field(description="The event's run, when readable.")
    summary: str = Field(description="The event's summary/message, else the rejection message.")


class DeadLetterPage(BaseModel):
    """A page of dead letters, oldest first, with cursors to go on from."""

    items: list[DeadLetterRecord] = Field(description="Matching dead letters, oldest first.")
    next_after: str | None = Field(
        description="Pass as after_id for newer entries (the newest id scanned)."
    )
    next_before: str | None = Field(
        description="Pass as before_id for older matches; None when there are none left."
    )


class Count(BaseModel):
    """How many dead letters have one key (a reason code, a stage, ...)."""

    key: str = Field(description="The reason code, family, stage or stream.")
    count: int = Field(description="Dead letters having it.")


class PartitionDeadLetters(BaseModel):
    """The dead letters of one partition: its stream's length, what the scan counted, ages."""

    partition: int = Field(description="Partition index.")
    stream: str = Field(description="Its dead-letter stream.")
    length: int = Field(description="XLEN of the stream.")
    scanned: int = Field(description="Dead letters counted by this scan.")
    by_family: list[Count] = Field(description="Reason-code families, most frequent first.")
    oldest_id: str | None = Field(description="Oldest dead letter's id.")
    newest_id: str | None = Field(description="Newest dead letter's id.")


class DeadLetterStats(BaseModel):
    """Counts and ages of the whole bus's dead letters: totals, then each partition's."""

    stream: str = Field(
        description="The dead-letter stream (with several partitions, the glob of theirs)."
    )
    length: int = Field(description="XLEN of the stream (summed over partitions).")
    scanned: int = Field(description="Dead letters counted by this scan.")
    by_family: list[Count] = Field(
        description="Reason-code families (the part before ':'), most frequent first."
    )
    by_code: list[Count] = Field(description="Full reason codes, most frequent first.")
    by_stage: list[Count] = Field(description="Rejecting stage, most frequent first.")
    by_source_stream: list[Count] = Field(description="Source stream, most frequent first.")
    oldest_id: str | None = Field(description="Oldest dead letter's id.")
    oldest_age_s: float | None = Field(description="Its age in seconds.")
    newest_id: str | None = Field(description="Newest dead letter's id.")
    newest_age_s: float | None = Field(description="Its age in seconds.")
    elapsed_s: float = Field(description="Time the scan took.")
    partitions: list[PartitionDeadLetters] = Field(
        default_factory=list, description="Each partition's share, in index order."
    )


class DeadLetterFilter(BaseModel):
    """Which dead letters a redrive or purge acts on (all conditions must hold).

    A listing's filters are the same conditions (`services.ops.filters.Matcher`), so a redrive
    of "what the page shows" selects exactly what the page lists.
    """

    model_config = ConfigDict(frozen=True)

    reasons: tuple[str, ...] = Field(
        (), description="Codes or code families (e.g. invalid_reason_code); any may match."
    )
    ids: tuple[str, ...] = Field((), description="Exact dead-letter ids; empty means any.")
    stages: tuple[str, ...] = Field(
        (), description="Rejecting pipeline stages (validator, persister, ...); any may match."
    )
    sources: tuple[StreamKind, ...] = Field(
        (),
        description="Source stream roles (events, valid): every partition's stream of each; "
        "any may match.",
    )
    since_s: float | None = Field(None, description="Only dead letters younger than this (s).")
    before_s: float | None = Field(None, description="Only dead letters older than this (s).")
    archived: bool = Field(
        False,
        description="A redrive's filter also selects the dead letters retention archived "
        "(not yet sent back from the archive); not a condition: it widens where to look.",
    )

    def is_empty(self) -> bool:
        """True when no condition is set (a zero duration is a condition: "younger than 0s")."""
        listed = self.reasons or self.ids or self.stages or self.sources
        return not listed and self.since_s is None and self.before_s is None

    def describe(self) -> dict[str, Any]:
        """The filter as written to the audit record (empty conditions left out). No condition
        at all is a redrive of every dead letter (`--all`, ``"all": true``: the guard lets no
        other empty filter through), and the record says so rather than ``{}``."""
        if self.is_empty():
            return {"all": True}
        return self.model_dump(exclude_defaults=True, mode="json")


class Selection(BaseModel):
    """The dead letters a filter matches: what a redrive or purge would act on."""

    ids: list[str] = Field(description="Matching dead-letter ids, oldest first.")
    by_family: list[Count] = Field(description="Their reason families, most frequent first.")


class RedriveResult(BaseModel):
    """What a redrive did (or, with dry_run, would do)."""

    target: str = Field(
        description="Stream the dead letters were moved to (with several partitions, the glob "
        "of every partition's incoming stream: each goes back to its own partition's)."
    )
    dry_run: bool = Field(description="True when nothing was moved.")
    matched: int = Field(description="Dead letters that matched the filter.")
    moved: int = Field(description="Dead letters moved by this run.")
    gone: int = Field(description="Matched, but already gone when moved (someone else did).")
    by_family: list[Count] = Field(
        default_factory=list,
        description="Every reason family of the matched dead letters, most frequent first.",
    )
    moved_ids: dict[str, str] = Field(
        default_factory=dict, description="Dead-letter id -> new entry id on the target."
    )
    other_source: int = Field(
        0, description="Moved entries whose source stream is not the target (check --to)."
    )
    audit_id: str | None = Field(None, description="Id of the audit record written.")
    targets: list[Count] = Field(
        default_factory=list, description="Dead letters moved, by target stream."
    )


class PurgeResult(BaseModel):
    """What a purge deleted."""

    matched: int = Field(description="Dead letters that matched the filter.")
    deleted: int = Field(description="Dead letters deleted by this run.")
    audit_id: str | None = Field(None, description="Id of the audit record written.")


class AuditRecord(BaseModel):
    """One redrive or purge: who, when, what, how many."""

    id: str | None = Field(None, description="Entry id on the audit stream.")
    action: Literal["redrive", "purge"] = Field(description="What was done.")
    operator: str = Field(description="Who did it (RUNBUS_OPERATOR, else the OS user).")
    at: datetime = Field(description="When.")
    filter: dict[str, Any] = Field(description="The filter used.")
    matched: int = Field(description="Dead letters that matched.")
    count: int = Field(description="Dead letters moved (redrive) or deleted (purge).")
    target: str | None = Field(None, description="Redrive target stream.")
    dry_run: bool = Field(False, description="True for a dry run (nothing changed).")


class ConsumerStatus(BaseModel):
    """One consumer of a group (XINFO CONSUMERS)."""

    name: str = Field(description="Consumer name.")
    pending: int = Field(description="Entries delivered to it and not acknowledged.")
    idle_ms: int = Field(description="Since its last attempted interaction (ms).")
    inactive_ms: int | None = Field(
        None, description="Since its last successful read (ms); Redis 7.2+ only."
    )


class GroupStatus(BaseModel):
    """One consumer group of a stream (XINFO GROUPS, XPENDING, XINFO CONSUMERS)."""

    name: str = Field(description="Group name.")
    exists: bool = Field(description="False when an expected group is absent.")
    expected: bool = Field(
        description="True for the groups the pipeline declares: each stage's, and the one an "
        "outlet's outside reader uses (the platform's on the actions stream)."
    )
    consumers: list[ConsumerStatus] = Field(default_factory=list, description="Its consumers.")
    pending: int = Field(0, description="Delivered, not acknowledged.")
    lag: int | None = Field(None, description="Entries not yet delivered; None when unknown.")
    last_delivered_id: str | None = Field(None, description="Last entry delivered.")
    entries_read: int | None = Field(None, description="Entries read by the group.")
    oldest_pending_id: str | None = Field(None, description="Oldest pending entry.")
    oldest_pending_age_s: float | None = Field(
        None, description="Age of the oldest pending entry (from its id), in seconds."
    )
    lag_s: float | None = Field(
        None,
        description="How far behind the group is, in seconds: the age of its oldest pending "
        "entry, or (when entries wait undelivered) of the last entry delivered to it, at "
        "most the age of the oldest entry it has not acknowledged; 0 when it is caught up.",
    )


class StreamStatus(BaseModel):
    """One stream of the bus (XINFO STREAM)."""

    role: str = Field(description="events, valid or dead; for an outlet, its name (actions).")
    partition: int = Field(
        0, description="Partition index (0 for an outlet: one stream for the whole bus)."
    )
    name: str = Field(description="Redis key.")
    exists: bool = Field(description="False when the stream is absent.")
    length: int = Field(0, description="Entries in the stream.")
    first_id: str | None = Field(None, description="Oldest entry.")
    first_age_s: float | None = Field(None, description="Its age in seconds.")
    last_id: str | None = Field(None, description="Newest entry.")
    last_age_s: float | None = Field(None, description="Its age in seconds.")
    groups: list[GroupStatus] = Field(default_factory=list, description="Consumer groups.")
    error: str | None = Field(None, description="Why it could not be read (e.g. wrong type).")


class GroupTotal(BaseModel):
    """One consumer group summed over every partition's stream of one role."""

    role: str = Field(description="events, valid or dead.")
    name: str = Field(description="Group name.")
    pending: int = Field(description="Delivered, not acknowledged, over all partitions.")
    lag: int | None = Field(description="Not yet delivered; None when a partition cannot tell.")
    consumers: int = Field(description="Distinct consumer names over all partitions.")
    missing: int = Field(description="Partitions where the group is absent.")


class RoleTotal(BaseModel):
    """One role's streams (events, valid, dead) summed over every partition."""

    role: str = Field(description="events, valid or dead.")
    length: int = Field(description="Entries, over all partitions.")
    missing: int = Field(description="Partitions where the stream is absent.")
    groups: list[GroupTotal] = Field(default_factory=list, description="Its groups, summed.")


class RedisMemory(BaseModel):
    """Redis's memory (``INFO memory``): how close it is to refusing writes."""

    used_bytes: int = Field(description="used_memory.")
    max_bytes: int = Field(description="maxmemory; 0 when Redis has no limit.")
    policy: str = Field(description="maxmemory-policy (runbus needs noeviction).")
    full: bool = Field(
        description="True when a limit is set and used memory is within 1 % of it: with "
        "noeviction Redis refuses XADD (OOM) there, producers spool, POST /api/events answers "
        "503."
    )
    growth_bytes_per_s: float | None = Field(
        None, description="used_memory's growth over the sampling window; None unsampled."
    )
    full_in_s: float | None = Field(
        None,
        description="At that growth, seconds until maxmemory is reached; None when there is "
        "no limit, no growth, or no sample.",
    )


class RetentionStatus(BaseModel):
    """Dead-letter retention as the persister last reported it (its hash
    ``Names.dead_letter_retention``): counts since the namespace began, the archive's size."""

    archived: int = Field(0, description="Dead letters written to the archive, ever.")
    expired: int = Field(
        0, description="Dead letters trimmed off their stream by retention (each archived first)."
    )
    archive_entries: int | None = Field(
        None, description="Dead letters in the archive at the last sweep; None before one."
    )
    archive_bytes: int | None = Field(None, description="Their fields' bytes.")
    archive_oldest_age_s: float | None = Field(
        None, description="Age of the oldest archived dead letter (from its id), in seconds."
    )
    archive_redriven: int | None = Field(
        None, description="Archived dead letters sent back by a redrive."
    )
    last_sweep_age_s: float | None = Field(
        None, description="Since the last sweep, in seconds; None when none ran."
    )
    error: str | None = Field(
        None,
        description="Why the last sweep failed (the archive or Redis unreachable): nothing is "
        "trimmed until it succeeds. None when it succeeded.",
    )


class BusStatus(BaseModel):
    """Every stream, group and consumer of one namespace: each partition's, then totals."""

    namespace: str = Field(description="RUNBUS_NAMESPACE.")
    at: datetime = Field(description="When the status was taken.")
    streams: list[StreamStatus] = Field(
        description="events, valid, dead (of each partition, in index order)."
    )
    dead_letters: int = Field(description="Depth of the dead-letter streams (all partitions).")
    partitions: int = Field(1, description="RUNBUS_PARTITIONS.")
    totals: list[RoleTotal] = Field(
        default_factory=list, description="Each role summed over the partitions."
    )
    outlets: list[StreamStatus] = Field(
        default_factory=list,
        description="The streams runbus writes for consumers outside it (the actions stream, "
        "one for the whole bus), each with the group its reader uses (the platform's).",
    )
    retention: RetentionStatus = Field(
        default_factory=RetentionStatus, description="Dead-letter retention and its archive."
    )
    memory: RedisMemory | None = Field(
        None, description="Redis's memory; None when INFO could not be read."
    )
