"""From a valid-stream envelope to a history record (the column values), for both backends.

The validator already checked the event, so this only reshapes it; anything that does not have
the expected shape (a hand-written envelope, a bug upstream) raises `StoreRejected`, exactly as
if the database had refused it, so the persister isolates it the same way on every backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final, NamedTuple

import msgspec
import orjson

from services.history.base import HistoryRow, StoreRejected
from shared.models import TS_MAX, TS_MIN, ValidEnvelope
from shared.valid_stream import DecodeError, EventDecoders

#: Insert columns, in record order (id and created_at come from the database).
COLUMNS: tuple[str, ...] = (
    "event_id",
    "dialect",
    "project_id",
    "run_id",
    "parent_run_id",
    "stage",
    "severity",
    "reason_code",
    "actor",
    "summary",
    "payload",
    "event_type",
    "message",
    "details",
    "ts",
    "accepted_at",
    "taxonomy_version",
    "source_id",
)
#: Read columns: `HistoryRow`'s fields, in its constructor order.
ROW_COLUMNS: tuple[str, ...] = HistoryRow.__struct_fields__


class Record(NamedTuple):
    """Column values of one history row; JSON columns already encoded."""

    event_id: str
    dialect: str
    project_id: int | None
    run_id: str
    parent_run_id: str | None
    stage: str | None
    severity: str
    reason_code: str | None
    actor: str | None
    summary: str | None
    payload: str | None
    event_type: str | None
    message: str | None
    details: str | None
    ts: datetime
    accepted_at: datetime
    taxonomy_version: str
    source_id: str


#: The persister's view of the valid stream: JSON objects (payload, details) stay bytes.
DECODERS: Final = EventDecoders(msgspec.Raw)


def parse_time(value: object) -> datetime:
    """An event time (ISO string or datetime) as an aware UTC datetime within 1970..2100."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise ValueError("timestamp must be an ISO 8601 string")
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    if not TS_MIN <= value < TS_MAX:
        raise ValueError("timestamp outside 1970..2100")
    return value


def _object_text(raw: msgspec.Raw, name: str, *, optional: bool) -> str | None:
    """A JSON object field as the column stores it: its text exactly as the envelope has it."""
    text = bytes(raw).decode()
    if optional and text == "null":
        return None
    if not text.startswith("{"):
        raise ValueError(f"{name} must be an object")
    return text


def _brewslm(env: Any, ev: Any, times: dict[datetime, datetime]) -> Record:
    return Record(
        env.event_id, "brewslm", ev.project_id, ev.run_id, ev.parent_run_id, ev.stage,
        ev.severity, ev.reason_code, ev.actor, ev.summary,
        _object_text(ev.payload, "payload", optional=False), None, None, None,
        _utc(ev.ts, times), _utc(env.accepted_at, times), env.taxonomy_version, env.source_id,
    )  # fmt: skip


def _pulse(env: Any, ev: Any, times: dict[datetime, datetime]) -> Record:
    return Record(
        env.event_id, "pulse", ev.project_id, ev.run_id, ev.parent_run_id, None, ev.severity,
        None, None, None, None, ev.event_type, ev.message,
        _object_text(ev.details, "details", optional=True),
        _utc(ev.created_at, times), _utc(env.accepted_at, times), env.taxonomy_version,
        env.source_id,
    )  # fmt: skip


def _utc(value: datetime, seen: dict[datetime, datetime]) -> datetime:
    """`parse_time` of a decoded time, once per distinct value of a batch."""
    found = seen.get(value)
    if found is None:
        found = seen[value] = parse_time(value)
    return found


class Envelope(NamedTuple):
    """A valid-stream body whose envelope decoded: its event is checked with its record."""

    event_id: str
    header: Any


def decode_envelope(data: bytes) -> Envelope:
    """The envelope of a valid-stream body (`DecodeError` when it is not one)."""
    header = DECODERS.envelope.decode(data)
    return Envelope(header.event_id, header)


def record_of_envelope(env: Envelope, times: dict[datetime, datetime] | None = None) -> Record:
    """The history record of a decoded envelope; `StoreRejected` when its event is not one.

    `times` caches a batch's converted times (a batch shares its accept times).
    """
    header = env.header
    try:
        event = DECODERS.event(header.dialect, header.event)
        build = _pulse if header.dialect == "pulse" else _brewslm
        return build(header, event, {} if times is None else times)
    except (DecodeError, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise StoreRejected(f"event {env.event_id}: {exc}") from exc


def record_of(env: ValidEnvelope, seen: dict[datetime, datetime] | None = None) -> Record:
    """The history record of a pydantic envelope (through its JSON: one mapping for both)."""
    try:
        decoded = decode_envelope(env.model_dump_json().encode())
    except DecodeError as exc:
        raise StoreRejected(f"event {env.event_id}: {exc}") from exc
    return record_of_envelope(decoded, seen)


def records_of(envelopes: Any) -> list[Record]:
    """Records of many envelopes (the first bad one raises `StoreRejected`)."""
    seen: dict[datetime, datetime] = {}
    return [record_of(env, seen) for env in envelopes]


def months_of(records: Sequence[Record]) -> set[tuple[int, int]]:
    """The (year, month) pairs a batch touches: the partitions it needs."""
    return {(r.ts.year, r.ts.month) for r in records}


def loads_json(value: Any) -> dict[str, Any] | None:
    """A JSON column read back (text, bytes, or already decoded)."""
    if value is None or isinstance(value, dict):
        return value
    decoded = orjson.loads(value)
    return decoded if isinstance(decoded, dict) else {"value": decoded}
