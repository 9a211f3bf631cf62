"""Pure decisions of the validator: what becomes of one incoming entry."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Final

import orjson

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
    """Decode, validate and wrap one entry (of `partition`, on a partitioned bus). Never raises."""
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
    origin = fields.get(ORIGIN_ID_FIELD)
    # Any producer can add fields: only an entry id may name the origin, or the derived event
    # id would break its pattern (and every downstream reader of the envelope).
    source = origin.decode() if origin and _ENTRY_ID.fullmatch(origin) else entry_id
    doc = envelope(result.event, source, entry_id, taxonomy.version, now, partition)
    return Valid({DATA_FIELD: doc})


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
        # The hot path: pydantic's own JSON serializer, the same JSON as model_dump(mode="json")
        # without building the intermediate dict (a third of the validator's encoding cost).
        body = event.__pydantic_serializer__.to_json(event)
    # The bytes orjson.dumps gives for {"event_id", "dialect", "taxonomy_version",
    # "accepted_at", "source_id", "event"} in that order, the batch's constant part made once.
    return b"".join(
        (
            b'{"event_id":',
            orjson.dumps(event_id),
            _DIALECTS[event.dialect],
            _accepted(taxonomy_version, now),
            orjson.dumps(entry_id),
            b',"event":',
            body,
            b"}",
        )
    )


_DIALECTS: Final = {d: b',"dialect":' + orjson.dumps(d) for d in ("brewslm", "pulse")}


@lru_cache(maxsize=8)
def _accepted(taxonomy_version: str, moment: datetime) -> bytes:
    # A batch shares one taxonomy and one acceptance time: encode them once, not per entry.
    version, at = orjson.dumps(taxonomy_version), orjson.dumps(moment.isoformat())
    return b',"taxonomy_version":' + version + b',"accepted_at":' + at + b',"source_id":'
