"""From a valid-stream envelope to a history record (the column values), for both backends.

The validator already checked the event, so this only reshapes it; anything that does not have
the expected shape (a hand-written envelope, a bug upstream) raises `StoreRejected`, exactly as
if the database had refused it, so the persister isolates it the same way on every backend.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from services.history.base import HistoryRow, StoreRejected
from shared.models import TS_MAX, TS_MIN, ValidEnvelope

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


def _text(doc: dict[str, Any], key: str, *, required: bool = False) -> str | None:
    value = doc.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string")
    return value


def _project(doc: dict[str, Any]) -> int | None:
    value = doc.get("project_id")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise ValueError("project_id must be a non-negative integer")
    return value


def _json(doc: dict[str, Any], key: str) -> str | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError(f"{key} must be an object")
    return orjson.dumps(value).decode()


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


def _batch_time(value: object, seen: dict[object, datetime] | None) -> datetime:
    """`parse_time`, once per distinct value of a batch (a batch shares its accept times)."""
    if seen is None:
        return parse_time(value)
    found = seen.get(value)
    if found is None:
        found = seen[value] = parse_time(value)
    return found


def _record(env: ValidEnvelope, seen: dict[object, datetime] | None = None) -> Record:
    ev = env.event
    pulse = env.dialect == "pulse"
    run_id = _text(ev, "run_id", required=True)
    assert run_id is not None  # required=True never returns None
    return Record(
        event_id=env.event_id,
        dialect=env.dialect,
        project_id=_project(ev),
        run_id=run_id,
        parent_run_id=_text(ev, "parent_run_id"),
        stage=None if pulse else _text(ev, "stage", required=True),
        severity=_text(ev, "severity", required=True) or "",
        reason_code=None if pulse else _text(ev, "reason_code"),
        actor=None if pulse else _text(ev, "actor") or "system",
        summary=None if pulse else _text(ev, "summary"),
        payload=None if pulse else _json(ev, "payload") or "{}",
        event_type=_text(ev, "event_type", required=True) if pulse else None,
        message=(_text(ev, "message") or "") if pulse else None,
        details=_json(ev, "details") if pulse else None,
        ts=parse_time(ev.get("created_at") if pulse else ev.get("ts")),
        accepted_at=_batch_time(env.accepted_at, seen),
        taxonomy_version=env.taxonomy_version,
        source_id=env.source_id,
    )


def record_of(env: ValidEnvelope, seen: dict[object, datetime] | None = None) -> Record:
    """The history record of an envelope; `StoreRejected` when the event is not well formed.

    `seen` is a batch's cache of converted accept times (see `records_of`).
    """
    try:
        return _record(env, seen)
    except (ValueError, TypeError, KeyError) as exc:
        raise StoreRejected(f"event {env.event_id}: {exc}") from exc


def records_of(envelopes: Any) -> list[Record]:
    """Records of many envelopes (the first bad one raises `StoreRejected`)."""
    seen: dict[object, datetime] = {}
    return [record_of(env, seen) for env in envelopes]


def months_of(records: list[Record]) -> set[tuple[int, int]]:
    """The (year, month) pairs a batch touches: the partitions it needs."""
    return {(r.ts.year, r.ts.month) for r in records}


def loads_json(value: Any) -> dict[str, Any] | None:
    """A JSON column read back (text, bytes, or already decoded)."""
    if value is None or isinstance(value, dict):
        return value
    decoded = orjson.loads(value)
    return decoded if isinstance(decoded, dict) else {"value": decoded}
