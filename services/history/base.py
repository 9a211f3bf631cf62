"""The history store interface: rows, pages, filters, errors, and the `HistoryStore` protocol.

One table holds both dialects. A BrewSLM row fills stage / reason_code / actor / summary /
payload; a Pulse row fills event_type / message / details; the other dialect's columns stay
empty. ``ts`` is the producer's event time, ``created_at`` the insert time. Every read is
ordered by ``(ts, id)`` and paged with an opaque keyset cursor on that pair.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import msgspec
import orjson

from shared.archive import ArchiveError, DeadLetterArchive
from shared.errors import InputError
from shared.models import ValidEnvelope

if TYPE_CHECKING:  # records.py imports this module (StoreRejected)
    from services.history.records import Record

#: Largest page a read returns, whatever the caller asks for.
MAX_PAGE = 5000


class HistoryError(ArchiveError):
    """Base of the store's errors (an `ArchiveError`: the store is the dead-letter archive too)."""


class StoreUnavailable(HistoryError):
    """The database cannot be reached or lost the connection: retrying later may succeed."""


class StoreRejected(HistoryError):
    """The database refused the data itself: the same rows would fail again."""


class HistoryInUse(HistoryError):
    """Another persister already writes this SQLite file: this one must not start.

    The message starts with `code`, a stable token operators and tests can match.
    """

    code = "history_in_use"


class InvalidCursor(InputError):
    """A cursor that this store did not hand out (or that was altered)."""

    code = "invalid_cursor"


class HistoryRow(msgspec.Struct, gc=False):
    """One stored event, whatever its dialect. Treat as read-only.

    A run read builds a thousand of these, so they cost the cyclic garbage collector nothing:
    ``gc=False`` leaves them untracked (their fields are atoms, times and JSON documents, so a
    row can never be part of a reference cycle), and they are never promoted into the old
    generation whose growth triggers full collections over the whole heap. Change a field
    with `msgspec.structs.replace`.
    """

    #: Insert order; breaks ties between events of the same `ts`.
    id: int
    #: The event's idempotency key (given by the producer or derived by the validator).
    event_id: str
    #: "brewslm" or "pulse".
    dialect: str
    #: Owning project (a Pulse event may have none).
    project_id: int | None
    #: The run the event belongs to.
    run_id: str
    #: The parent run, when the run is nested.
    parent_run_id: str | None
    #: BrewSLM info/warning/error/critical, Pulse info/warn/error.
    severity: str
    #: The producer's event time (RunEvent.ts, PulseEvent.created_at), UTC.
    ts: datetime
    #: When the row was written (database clock).
    created_at: datetime
    #: When the validator accepted the event.
    accepted_at: datetime
    #: Taxonomy version the event was checked against.
    taxonomy_version: str
    #: Entry id of the event on the incoming stream.
    source_id: str
    #: BrewSLM: one of the nine stages.
    stage: str | None = None
    #: BrewSLM: taxonomy reason code.
    reason_code: str | None = None
    #: BrewSLM: "system" or a user id.
    actor: str | None = None
    #: BrewSLM: one-line label.
    summary: str | None = None
    #: BrewSLM: free-form details.
    payload: dict[str, Any] | None = None
    #: Pulse: catalog event type.
    event_type: str | None = None
    #: Pulse: human-readable text.
    message: str | None = None
    #: Pulse: event-specific JSON.
    details: dict[str, Any] | None = None

    def fields(self) -> dict[str, Any]:
        """The common fields plus those of the row's own dialect (`SHOWN`), times as datetimes:
        what `to_dict` shows and the HTTP API encodes (orjson writes a UTC time exactly as
        ``isoformat`` does)."""
        names, values = _SHOWN_OF.get(self.dialect, _BREWSLM_SHOWN)
        return dict(zip(names, values(self), strict=True))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: `fields`, the times in ISO 8601."""
        doc = self.fields()
        for name in TIME_FIELDS:
            doc[name] = doc[name].isoformat()
        return doc


_HEAD = ("id", "event_id", "dialect", "project_id", "run_id", "parent_run_id", "severity")
_TAIL = ("ts", "created_at", "accepted_at", "taxonomy_version", "source_id")
#: What a row shows, by dialect: the common fields, its dialect's own, then the times and ids.
SHOWN: dict[str, tuple[str, ...]] = {
    dialect: (*_HEAD, *own, *_TAIL)
    for dialect, own in (
        ("brewslm", ("stage", "reason_code", "actor", "summary", "payload")),
        ("pulse", ("event_type", "message", "details")),
    )
}
#: The shown fields that are times.
TIME_FIELDS = ("ts", "created_at", "accepted_at")
# Names and a C getter of their values, per dialect (a row of another dialect shows BrewSLM's).
_SHOWN_OF = {dialect: (names, attrgetter(*names)) for dialect, names in SHOWN.items()}
_BREWSLM_SHOWN = _SHOWN_OF["brewslm"]


class Fetched(Protocol):
    """A page's rows as the store fetched them, decoded only as far as the reader needs: the
    HTTP API encodes `fields` (no `HistoryRow` is built), the CLI and the dashboard read
    `rows`."""

    def rows(self) -> list[HistoryRow]:
        """The rows."""
        ...

    def fields(self) -> list[dict[str, Any]]:
        """What `HistoryRow.fields` gives for each row, in order."""
        ...

    def __len__(self) -> int:
        """How many rows."""
        ...


class Page:
    """A page of rows in ``(ts, id)`` order; `next_cursor` is None on the last page.

    Built from rows, or from what a store fetched (`fetched`), decoded on first use.
    """

    __slots__ = ("_fetched", "_rows", "next_cursor")

    def __init__(
        self,
        rows: list[HistoryRow] | None = None,
        next_cursor: str | None = None,
        *,
        fetched: Fetched | None = None,
    ) -> None:
        self._rows = [] if rows is None and fetched is None else rows
        self._fetched = fetched
        #: Pass back as ``cursor`` for the next page; None on the last page.
        self.next_cursor = next_cursor

    @property
    def rows(self) -> list[HistoryRow]:
        """The rows of this page."""
        if self._rows is None:
            assert self._fetched is not None
            self._rows = self._fetched.rows()
        return self._rows

    def __len__(self) -> int:
        """Rows on this page (counted without decoding them)."""
        return len(self._rows) if self._rows is not None else self._fetched_len()

    def _fetched_len(self) -> int:
        assert self._fetched is not None
        return len(self._fetched)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Page):
            return NotImplemented
        return (self.rows, self.next_cursor) == (other.rows, other.next_cursor)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Page(rows={self.rows!r}, next_cursor={self.next_cursor!r})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (what the HTTP API returns)."""
        return {"events": [r.to_dict() for r in self.rows], "next_cursor": self.next_cursor}

    def to_json(self) -> bytes:
        """`to_dict` as JSON (the HTTP API's body), encoded from each row's `fields` (straight
        from what the store fetched when the rows were not needed)."""
        if self._rows is None and self._fetched is not None:
            events = self._fetched.fields()
        else:
            events = [r.fields() for r in self.rows]
        return orjson.dumps({"events": events, "next_cursor": self.next_cursor})


@dataclass(frozen=True, slots=True)
class ProjectFilter:
    """Filters of a project timeline; None means "any". `since` is inclusive, `until` not."""

    #: BrewSLM stage.
    stage: str | None = None
    #: Severity, as stored (BrewSLM "warning", Pulse "warn", ...).
    severity: str | None = None
    #: BrewSLM reason code.
    reason_code: str | None = None
    #: Pulse event type.
    event_type: str | None = None
    #: Events at or after this time.
    since: datetime | None = None
    #: Events before this time.
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class PruneResult:
    """What a prune removed."""

    #: History older than this was removed (now - older_than).
    cutoff: datetime
    #: Events removed.
    rows_deleted: int = 0
    #: PostgreSQL: the monthly partitions detached and dropped.
    partitions_dropped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "cutoff": self.cutoff.isoformat(),
            "rows_deleted": self.rows_deleted,
            "partitions_dropped": list(self.partitions_dropped),
        }


@dataclass(frozen=True, slots=True)
class ArchivePruneResult:
    """What a prune of the dead-letter archive removed."""

    #: Letters dead-lettered before this were removed (now - older_than).
    cutoff: datetime
    #: Archived letters removed (with their redrive claims).
    letters_deleted: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"cutoff": self.cutoff.isoformat(), "letters_deleted": self.letters_deleted}


@dataclass(frozen=True, slots=True)
class RunSpan:
    """What the history tells of one run in a few index probes: its first and last event
    times, and its parent."""

    #: The run.
    run_id: str
    #: Its earliest event time.
    first_ts: datetime
    #: Its latest event time.
    last_ts: datetime
    #: The first parent run its events name (in event-time order, among its first
    #: `PARENT_PROBE` events); None when they name none.
    parent_run_id: str | None


#: A run's parent is looked for among its first this many events: a bounded read even for a
#: root run of a million events (a nested run names its parent from its first event on).
PARENT_PROBE = 100


@runtime_checkable
class HistoryStore(DeadLetterArchive, Protocol):
    """The append-only run history, and the dead-letter archive beside it (the archive's
    methods are `DeadLetterArchive`'s). Every method may raise `StoreUnavailable`."""

    async def open(self) -> None:
        """Connect (no schema change)."""

    async def close(self) -> None:
        """Release connections."""

    async def ping(self) -> bool:
        """True when the database answers."""

    async def migrate(self) -> list[int]:
        """Apply pending migrations; the versions applied now (empty when up to date)."""

    async def insert_batch(self, envelopes: Sequence[ValidEnvelope]) -> int:
        """`insert_records` of the envelopes' records (`StoreRejected` if one is not an event)."""

    async def insert_records(self, records: Sequence[Record]) -> int:
        """Insert in one transaction, skipping events already stored; rows newly inserted.

        Raises `StoreRejected` when the database refuses the data (the whole batch is rolled
        back), `StoreUnavailable` when it cannot be reached.
        """

    async def run_timeline(
        self, run_id: str, *, children: bool = False, cursor: str | None = None, limit: int = 1000
    ) -> Page:
        """The run's events (and its descendants' when `children`) in event-time order."""

    async def project_timeline(
        self,
        project_id: int,
        filters: ProjectFilter | None = None,
        *,
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page:
        """A project's events in event-time order, filtered."""

    async def run_spans(self, run_ids: Sequence[str]) -> list[RunSpan]:
        """The span of each run that has events, in the order given (others left out).

        Index probes on ``history_run (run_id, ts, id)`` only: first and last entry, and at
        most `PARENT_PROBE` rows for the parent.
        """

    async def child_runs(self, run_id: str, limit: int) -> list[str]:
        """Up to `limit` distinct runs whose events name `run_id` as parent, by run id (an
        index-only read of ``history_parent (parent_run_id, run_id)``)."""

    async def events_by_id(self, event_ids: Sequence[str], limit: int = 20) -> list[HistoryRow]:
        """Stored events with any of these event ids, in ``(ts, id)`` order (the unique key
        ``(event_id, ts)`` serves it: one probe per id, per partition on PostgreSQL)."""

    def iter_events(self, project_id: int | None = None) -> AsyncIterator[HistoryRow]:
        """Every event (of one project, or all) in ``(ts, id)`` order."""

    async def prune(self, older_than: timedelta) -> PruneResult:
        """Remove history older than now - `older_than` (the one removal the schema allows)."""

    async def prune_archive(self, older_than: timedelta) -> ArchivePruneResult:
        """Remove archived dead letters dead-lettered before now - `older_than`, a chunk per
        transaction (the persister's writes wait at most one chunk)."""

    async def count(self) -> int:
        """Number of stored events."""


# --- run families -------------------------------------------------------------------------

#: A run's descendants are followed this many levels down at most (cycles end earlier).
MAX_DEPTH = 64
#: At most this many runs in one family read.
MAX_FAMILY = 10_000


async def family_of(
    run_id: str, children_of: Callable[[list[str]], Awaitable[list[str]]]
) -> list[str]:
    """`run_id` and its descendants, level by level (`children_of` returns the child run ids
    of a list of runs). Simple indexed queries, so every backend plans them well."""
    family = [run_id]
    seen = {run_id}
    frontier = [run_id]
    for _ in range(MAX_DEPTH):
        frontier = [r for r in await children_of(frontier) if r not in seen]
        frontier = frontier[: MAX_FAMILY - len(family)]
        if not frontier:
            break
        seen.update(frontier)
        family += frontier
    return family


# --- cursors ------------------------------------------------------------------------------


#: A cursor: the last row's event time in microseconds since the epoch, a dot, its row id.
#: Every string of this shape is a position (times past what a datetime holds are clamped), so
#: the OpenAPI pattern and the decoder agree.
CURSOR_PATTERN = r"^-?[0-9]{1,18}\.[0-9]{1,19}$"
_CURSOR = re.compile(CURSOR_PATTERN)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


def encode_cursor(ts: datetime, row_id: int) -> str:
    """Keyset cursor after the row ``(ts, id)``."""
    return f"{(ts - _EPOCH) // _MICRO}.{row_id}"


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """The ``(ts, id)`` a cursor points after; `InvalidCursor` when it is not one."""
    if not _CURSOR.fullmatch(cursor):
        raise InvalidCursor(f"invalid cursor: {cursor[:80]!r} (use a next_cursor value)")
    micros, _, row_id = cursor.partition(".")
    try:
        ts = _EPOCH + int(micros) * _MICRO
    except OverflowError:
        ts = datetime.min.replace(tzinfo=UTC) if micros.startswith("-") else _LAST
    # Row ids are signed 64-bit in both stores: a larger one means "after every row there".
    return ts, min(int(row_id), MAX_ROW_ID)


#: Largest row id the stores hold.
MAX_ROW_ID = 2**63 - 1
_LAST = datetime.max.replace(tzinfo=UTC)


def page_of(rows: list[HistoryRow], limit: int) -> Page:
    """A page from up to ``limit + 1`` fetched rows (the extra row only proves there is more)."""
    if len(rows) <= limit:
        return Page(rows)
    kept = rows[:limit]
    last = kept[-1]
    return Page(kept, encode_cursor(last.ts, last.id))


def clamp_limit(limit: int) -> int:
    """A page size between 1 and `MAX_PAGE`."""
    return max(1, min(int(limit), MAX_PAGE))
