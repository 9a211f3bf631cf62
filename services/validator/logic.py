"""Pure decisions of the validator: what becomes of one incoming entry."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Final

import orjson

from services.validator import fast
from shared.models import Event
from shared.taxonomy import Taxonomy
from shared.validation import Accepted, validate_bytes
from shared.wire import DATA_FIELD, ORIGIN_ID_FIELD, Fields, derived_event_id, unwrap_body

_ENTRY_ID = re.compile(rb"[0-9]{1,20}-[0-9]{1,20}")


@dataclass(slots=True)  # not frozen: one per entry, and a frozen init costs four times as much
class Valid:
    """The entry is accepted: `fields` is its valid-stream entry."""

    fields: Fields


@dataclass(frozen=True, slots=True)
class Invalid:
    """The entry is rejected with every error code."""

    errors: list[str]
    message: str


Verdict = Valid | Invalid


def judge(
    entry_id: str,
    fields: Fields,
    taxonomy: Taxonomy,
    max_bytes: int,
    now: datetime,
    partition: int | None = None,
) -> Verdict:
    """Decode, validate and wrap one entry (of `partition`, on a partitioned bus). Never raises.

    The fast path accepts the entries it is sure of; the pydantic path judges the rest (every
    rejection): the same verdict, codes, message and bytes as that path alone.
    """
    verdict = fast_judge(entry_id, fields, taxonomy, max_bytes, now, partition)
    if verdict is None:
        return reference_judge(entry_id, fields, taxonomy, max_bytes, now, partition)
    return verdict


def fast_judge(
    entry_id: str,
    fields: Fields,
    taxonomy: Taxonomy,
    max_bytes: int,
    now: datetime,
    partition: int | None = None,
) -> Valid | None:
    """The entry accepted in one msgspec pass (`fast`); None when the pydantic path must judge."""
    raw = fields.get(DATA_FIELD)
    if raw is None or len(raw) > max_bytes:
        return None
    body = unwrap_body(raw)
    event = fast.accepted(body, taxonomy) if body is not None else None
    if event is None:
        return None
    if event.event_id is None:
        event.event_id = derived_event_id(source_id(fields, entry_id), partition)
    head = _head(event.event_id, event.dialect, taxonomy.version, now)
    return Valid(
        {DATA_FIELD: b"".join((head, orjson.dumps(entry_id), _EVENT, fast.encode(event), b"}"))}
    )


def reference_judge(
    entry_id: str,
    fields: Fields,
    taxonomy: Taxonomy,
    max_bytes: int,
    now: datetime,
    partition: int | None = None,
) -> Verdict:
    """The pydantic path: the contract's verdict, error codes and message for any entry."""
    raw = fields.get(DATA_FIELD)
    if raw is None:
        return Invalid(["schema_violation:__data__"], "the entry has no __data__ field")
    if len(raw) > max_bytes:
        return Invalid(["payload_too_large"], f"{len(raw)} bytes > limit {max_bytes}")
    body = unwrap_body(raw)
    if body is None:
        return Invalid(["malformed_json"], "broken FastStream binary envelope")
    result = validate_bytes(body, taxonomy, max_bytes)
    if not isinstance(result, Accepted):
        return Invalid(result.errors, result.message)
    source = source_id(fields, entry_id)
    doc = envelope(result.event, source, entry_id, taxonomy.version, now, partition)
    return Valid({DATA_FIELD: doc})


def source_id(fields: Fields, entry_id: str) -> str:
    """The entry id the event first had on the incoming stream (kept across redrives)."""
    origin = fields.get(ORIGIN_ID_FIELD)
    # Any producer can add fields: only an entry id may name the origin, or the derived event
    # id would break its pattern (and every downstream reader of the envelope).
    return origin.decode() if origin and _ENTRY_ID.fullmatch(origin) else entry_id


def envelope(
    event: Event,
    origin_id: str,
    entry_id: str,
    taxonomy_version: str,
    now: datetime,
    partition: int | None = None,
) -> bytes:
    """The valid-stream body: the normalized event with its id, taxonomy version and times.

    An event without an id gets one derived from the entry id it first had on the incoming
    stream (kept across redrives), so any redelivery maps to the same id.
    """
    event_id = event.event_id or derived_event_id(origin_id, partition)
    if event.event_id is None:
        doc = event.model_dump(mode="json")
        doc["event_id"] = event_id
        body = orjson.dumps(doc)
    else:
        # pydantic's own JSON serializer, the same JSON as model_dump(mode="json") without
        # building the intermediate dict.
        body = event.__pydantic_serializer__.to_json(event)
    head = _head(event_id, event.dialect, taxonomy_version, now)
    return b"".join((head, orjson.dumps(entry_id), _EVENT, body, b"}"))


def _head(event_id: str, dialect: str, taxonomy_version: str, now: datetime) -> bytes:
    # The bytes orjson.dumps gives for {"event_id", "dialect", "taxonomy_version",
    # "accepted_at", "source_id", "event"} in that order, up to the source id's value.
    return b"".join((b'{"event_id":', orjson.dumps(event_id), _DIALECTS[dialect],
                     _accepted(taxonomy_version, now)))  # fmt: skip


_EVENT: Final = b',"event":'
_DIALECTS: Final = {d: b',"dialect":' + orjson.dumps(d) for d in ("brewslm", "pulse")}


@lru_cache(maxsize=8)
def _accepted(taxonomy_version: str, moment: datetime) -> bytes:
    # A batch shares one taxonomy and one acceptance time: encode them once, not per entry.
    version, at = orjson.dumps(taxonomy_version), orjson.dumps(moment.isoformat())
    return b',"taxonomy_version":' + version + b',"accepted_at":' + at + b',"source_id":'
