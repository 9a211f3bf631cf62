"""The SQLite history row (migration 0002): the columns the reads search, and one JSON body.

A row binds six values: the five columns an index or a lookup reads (`COLUMNS`: event id, run,
parent run, project, event time) and `body`, one JSON array holding every other field in
`BODY` order. Binding is most of what an insert costs SQLite (each value is converted and
copied, then copied into the record), so eighteen values bound per row cost more than the
four B-trees an insert updates; a row of six inserts about 1.9 times as fast as the 0001
row (2.0 times in CPU time).

Times are integers, microseconds since the epoch (UTC): eight bytes in each index instead of a
32-character text, and compared as integers. `id` is SQLite's rowid (insert order).

The JSON objects (payload, details) go into the body verbatim (`orjson.Fragment`), so they keep
their key order; text with NUL is written ``\\u0000`` and comes back unchanged.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson

from services.history.base import HistoryRow, Page, StoreRejected, encode_cursor
from services.history.records import Record

#: The columns an insert binds, in parameter order (``id`` is the rowid).
COLUMNS: Final = ("event_id", "run_id", "parent_run_id", "project_id", "ts", "body")
#: What `body` holds, a JSON array in this order: the record's plain fields, then the two
#: times (microseconds), then the two JSON objects (verbatim; null when absent).
BODY: Final = (
    "dialect",
    "severity",
    "stage",
    "reason_code",
    "event_type",
    "actor",
    "summary",
    "message",
    "taxonomy_version",
    "source_id",
    "accepted_at",
    "created_at",
    "payload",
    "details",
)
_TAIL = ("accepted_at", "created_at", "payload", "details")
assert BODY[-len(_TAIL) :] == _TAIL  # `params` appends these four after the plain fields
_PLAIN = BODY[: -len(_TAIL)]
#: The columns a read selects: the rowid, then `COLUMNS`.
READ_COLUMNS: Final = ("id", *COLUMNS)
#: Project filters on body fields (the taxonomy's values, never NUL: SQLite's JSON functions
#: would cut a string at one).
FILTERABLE: Final = ("stage", "severity", "reason_code", "event_type")

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO: Final = timedelta(microseconds=1)
_plain = operator.attrgetter(*_PLAIN)
_fromtimestamp = datetime.fromtimestamp
_Fragment = orjson.Fragment
_dumps = orjson.dumps


def body_field(name: str, table: str = "h") -> str:
    """The SQL expression of one body field (a project filter)."""
    return f"json_extract({table}.body, '$[{BODY.index(name)}]')"


def micros(value: datetime) -> int:
    """A time as the table stores it: microseconds since the epoch."""
    return (value - _EPOCH) // _MICRO


def time_of(value: int) -> datetime:
    """A stored time as an aware UTC datetime (inverse of `micros`).

    Through a float, which is exact here: before 2100 (the contract's bound) a time in seconds
    is below 2**32, where a double's spacing is under a microsecond, so the division is off by
    less than half a microsecond and `fromtimestamp` rounds it back to the exact one. Half the
    cost of building a timedelta, and a run read converts a thousand.
    """
    return _fromtimestamp(value / 1e6, UTC)


def now_micros() -> int:
    """The insert time a batch's rows get (SQLite runs in the writer's process: its clock)."""
    return micros(datetime.now(UTC))


def _fragment(text: str | None) -> Any:
    return None if text is None else _Fragment(text)


def params(records: Sequence[Record], created: int) -> list[tuple[Any, ...]]:
    """What an insert binds for a batch's records (`COLUMNS` order); `created` is the batch's
    insert time. A value JSON cannot hold (a lone surrogate) is `StoreRejected`."""
    accepted: dict[datetime, int] = {}  # a batch shares one or two accept times
    out: list[tuple[Any, ...]] = []
    for r in records:
        acc = accepted.get(r.accepted_at)
        if acc is None:
            acc = accepted[r.accepted_at] = micros(r.accepted_at)
        try:
            body = _dumps(
                (*_plain(r), acc, created, _fragment(r.payload), _fragment(r.details))
            ).decode()
        except orjson.JSONEncodeError as exc:
            raise StoreRejected(f"event {r.event_id}: {exc}") from exc
        out.append((r.event_id, r.run_id, r.parent_run_id, r.project_id, micros(r.ts), body))
    return out


def _document(value: Any) -> dict[str, Any] | None:
    # As `records.loads_json` reads a JSON column: an object, or anything else wrapped.
    return value if value is None or isinstance(value, dict) else {"value": value}


def _unpacked(raw: list[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
    """Each selected row (`READ_COLUMNS` order) with its body spread and its times converted:
    id, event_id, run_id, parent_run_id, project_id, ts, created_at, accepted_at, dialect,
    severity, stage, reason_code, event_type, actor, summary, message, taxonomy_version,
    source_id, payload, details.

    Positional, in one loop: a run read decodes a thousand rows, and a function call per field
    costs more than the decoding itself. A page shares few accept and insert times: each is
    converted once.
    """
    times: dict[int, datetime] = {}
    loads, doc, stamp, utc = orjson.loads, _document, _fromtimestamp, UTC
    # fmt: off
    for row_id, event_id, run_id, parent_run_id, project_id, ts, body in raw:
        (dialect, severity, stage, reason_code, event_type, actor, summary, message,
         taxonomy_version, source_id, accepted_at, created_at, payload, details) = loads(body)
        accepted = times.get(accepted_at)
        if accepted is None:
            accepted = times[accepted_at] = stamp(accepted_at / 1e6, utc)
        created = times.get(created_at)
        if created is None:
            created = times[created_at] = stamp(created_at / 1e6, utc)
        yield (row_id, event_id, run_id, parent_run_id, project_id, stamp(ts / 1e6, utc),
               created, accepted, dialect, severity, stage, reason_code, event_type, actor,
               summary, message, taxonomy_version, source_id, doc(payload), doc(details))
    # fmt: on


def rows_of(raw: list[tuple[Any, ...]]) -> list[HistoryRow]:
    """`HistoryRow`s of rows selected in `READ_COLUMNS` order."""
    # fmt: off
    return [
        HistoryRow(
            row_id, event_id, dialect, project_id, run_id, parent_run_id, severity, ts, created,
            accepted, taxonomy_version, source_id, stage, reason_code, actor, summary, payload,
            event_type, message, details,
        )
        for (row_id, event_id, run_id, parent_run_id, project_id, ts, created, accepted, dialect,
             severity, stage, reason_code, event_type, actor, summary, message, taxonomy_version,
             source_id, payload, details) in _unpacked(raw)
    ]
    # fmt: on


def fields_of(raw: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """What `HistoryRow.fields` gives for each row selected in `READ_COLUMNS` order, built
    straight from the tuples (no `HistoryRow`): a run read's API answer. The keys are in
    `base.SHOWN`'s order (a test holds the bytes to those of `rows_of`'s rows)."""
    out: list[dict[str, Any]] = []
    # fmt: off
    for (row_id, event_id, run_id, parent_run_id, project_id, ts, created, accepted, dialect,
         severity, stage, reason_code, event_type, actor, summary, message, taxonomy_version,
         source_id, payload, details) in _unpacked(raw):
        if dialect == "pulse":
            own = {"event_type": event_type, "message": message, "details": details}
        else:
            own = {"stage": stage, "reason_code": reason_code, "actor": actor,
                   "summary": summary, "payload": payload}
        out.append({
            "id": row_id, "event_id": event_id, "dialect": dialect, "project_id": project_id,
            "run_id": run_id, "parent_run_id": parent_run_id, "severity": severity, **own,
            "ts": ts, "created_at": created, "accepted_at": accepted,
            "taxonomy_version": taxonomy_version, "source_id": source_id,
        })
    # fmt: on
    return out


class Fetched:
    """A page's rows as SQLite returned them (`base.Fetched`)."""

    __slots__ = ("_raw",)

    def __init__(self, raw: list[tuple[Any, ...]]) -> None:
        self._raw = raw

    def __len__(self) -> int:
        return len(self._raw)

    def rows(self) -> list[HistoryRow]:
        """`rows_of` the tuples."""
        return rows_of(self._raw)

    def fields(self) -> list[dict[str, Any]]:
        """`fields_of` the tuples."""
        return fields_of(self._raw)


def page_of_raw(raw: list[tuple[Any, ...]], limit: int) -> Page:
    """A page from up to ``limit + 1`` fetched tuples, decoded when read (`base.page_of`)."""
    if len(raw) <= limit:
        return Page(fetched=Fetched(raw))
    kept = raw[:limit]
    row_id, ts = kept[-1][0], kept[-1][READ_COLUMNS.index("ts")]
    return Page(next_cursor=encode_cursor(time_of(ts), row_id), fetched=Fetched(kept))
