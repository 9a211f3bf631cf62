"""The wire format: how events, envelopes and dead letters sit in stream entries.

An incoming entry has one field ``__data__`` holding the event as UTF-8 JSON — what FastStream
parses as a plain body, and what any language can ``XADD``. Entries that FastStream's own
publisher wrote (its binary format, or the legacy ``{"data": ..., "headers": ...}`` JSON
envelope) are unwrapped to the same body.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from shared.models import DeadLetter, Event, ValidEnvelope

DATA_FIELD = b"__data__"
#: Set by `runbus dlq redrive`: the dead letter an entry came back from.
REDRIVEN_FROM_FIELD = b"redriven_from"
#: Set by `runbus dlq redrive`: the entry id the event first had on the incoming stream.
ORIGIN_ID_FIELD = b"origin_source_id"
FASTSTREAM_MAGIC = b"\x89BIN\r\n\x1a\n"

Fields = dict[bytes, bytes]


def event_body(event: Event | dict[str, Any]) -> bytes:
    """The JSON body of an event (None fields left out)."""
    if isinstance(event, dict):
        return orjson.dumps(event)
    return orjson.dumps(event.model_dump(mode="json", exclude_none=True))


def event_fields(event: Event | dict[str, Any]) -> Fields:
    """The entry fields of one event, ready for XADD."""
    return {DATA_FIELD: event_body(event)}


def unwrap_body(data: bytes) -> bytes | None:
    """The event body inside ``__data__``; None when a FastStream envelope is broken."""
    if data.startswith(FASTSTREAM_MAGIC):
        return _parse_faststream_binary(data)
    if data.startswith(b'{"data":'):
        return _parse_legacy_envelope(data)
    return data


def _parse_faststream_binary(data: bytes) -> bytes | None:
    # Layout (faststream.redis.parser.binary.BinaryMessageFormatV1): magic(8) version(2)
    # headers_start(4) data_start(4) ... body from data_start to the end.
    if len(data) < 18 or int.from_bytes(data[8:10], "big") != 1:
        return None
    data_start = int.from_bytes(data[14:18], "big")
    if data_start > len(data) or data_start < 18:
        return None
    return data[data_start:]


def _parse_legacy_envelope(data: bytes) -> bytes:
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        return data
    if isinstance(doc, dict) and set(doc) <= {"data", "headers"} and isinstance(doc["data"], str):
        return doc["data"].encode()
    return data


def entry_time(entry_id: str) -> datetime:
    """The time Redis stamped into an entry id."""
    millis = int(entry_id.split("-", 1)[0])
    return datetime.fromtimestamp(millis / 1000, tz=UTC)


def derived_event_id(source_id: str) -> str:
    """The event id given to an event that arrived without one: stable across redelivery."""
    return f"evt-{source_id}"


def envelope_body(envelope: ValidEnvelope) -> bytes:
    """JSON of a valid-stream envelope."""
    return orjson.dumps(envelope.model_dump(mode="json"))


def parse_envelope(data: bytes) -> ValidEnvelope:
    """Parse a valid-stream ``__data__`` (raises on anything else)."""
    return ValidEnvelope.model_validate_json(data)


def dead_letter_fields(dl: DeadLetter) -> Fields:
    """Flat entry fields of a dead letter, readable with plain XRANGE."""
    fields: Fields = {
        b"errors": orjson.dumps(dl.errors),
        b"message": dl.message.encode(),
        b"original": dl.original,
        b"source_stream": dl.source_stream.encode(),
        b"source_id": dl.source_id.encode(),
        b"group": dl.group.encode(),
        b"consumer": dl.consumer.encode(),
        b"stage": dl.stage.encode(),
        b"delivery_count": str(dl.delivery_count).encode(),
        b"first_seen": dl.first_seen.isoformat().encode(),
        b"dead_at": dl.dead_at.isoformat().encode(),
        b"taxonomy_version": dl.taxonomy_version.encode(),
        b"service_version": dl.service_version.encode(),
        b"hint": orjson.dumps(dl.hint),
    }
    for name, value in dl.original_fields.items():
        fields[b"orig:" + name.encode("utf-8", "surrogateescape")] = value
    return fields


def parse_dead_letter(fields: Fields) -> DeadLetter:
    """Rebuild a dead letter from its entry fields (raises if they are not one)."""

    def text(name: bytes) -> str:
        return fields.get(name, b"").decode("utf-8", "replace")

    originals = {
        k[5:].decode("utf-8", "surrogateescape"): v
        for k, v in fields.items()
        if k.startswith(b"orig:")
    }
    return DeadLetter(
        errors=orjson.loads(fields[b"errors"]),
        message=text(b"message"),
        original=fields.get(b"original", b""),
        original_fields=originals,
        source_stream=text(b"source_stream"),
        source_id=text(b"source_id"),
        group=text(b"group"),
        consumer=text(b"consumer"),
        stage=text(b"stage"),
        delivery_count=int(fields.get(b"delivery_count", b"0")),
        first_seen=datetime.fromisoformat(text(b"first_seen")),
        dead_at=datetime.fromisoformat(text(b"dead_at")),
        taxonomy_version=text(b"taxonomy_version"),
        service_version=text(b"service_version"),
        hint=orjson.loads(fields.get(b"hint", b"{}")),
    )


def hint_of(body: bytes | None) -> dict[str, str]:
    """Best-effort display fields of a (possibly invalid) event body; never raises."""
    if not body or len(body) > 1_000_000:
        return {}
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    if not isinstance(doc, dict):
        return {}
    keys = ("stage", "event_type", "severity", "project_id", "run_id", "summary", "message")
    return {k: str(doc[k])[:200] for k in keys if k in doc and doc[k] is not None}
