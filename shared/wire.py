"""The wire format: how events, envelopes and dead letters sit in stream entries.

An incoming entry has one field ``__data__`` holding the event as UTF-8 JSON — what FastStream
parses as a plain body, and what any language can ``XADD``. Entries that FastStream's own
publisher wrote (its binary format, or the legacy ``{"data": ..., "headers": ...}`` JSON
envelope) are unwrapped to the same body.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, get_origin

import orjson
from pydantic.fields import FieldInfo

from shared.models import ActionRequest, DeadLetter, Event, ValidEnvelope

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


def entry_id_key(entry_id: str) -> tuple[int, int]:
    """Sort key of an entry id: ``5-10`` comes after ``5-9``, which text order gets wrong."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def as_text(value: bytes | str | None) -> str:
    """A value from Redis as text: bytes decoded (invalid UTF-8 replaced), None as ''."""
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def derived_event_id(source_id: str, partition: int | None = None) -> str:
    """The event id given to an event that arrived without one: stable across redelivery.

    Entry ids are unique only within a stream, so on a bus of several partitions the id names
    the partition too (``evt-3:1700000000000-0``, as dead-letter ids do); ``partition`` is None
    on a single-partition bus, whose ids stay ``evt-<entry id>``.
    """
    if partition is None:
        return f"evt-{source_id}"
    return f"evt-{partition}:{source_id}"


def envelope_body(envelope: ValidEnvelope) -> bytes:
    """JSON of a valid-stream envelope."""
    return orjson.dumps(envelope.model_dump(mode="json"))


def parse_envelope(data: bytes) -> ValidEnvelope:
    """Parse a valid-stream ``__data__`` (raises on anything else)."""
    return ValidEnvelope.model_validate_json(data)


def action_fields(request: ActionRequest) -> Fields:
    """The entry of one action request: ``__data__`` = its JSON (as on the other streams)."""
    return {DATA_FIELD: orjson.dumps(request.model_dump(mode="json"))}


def parse_action(fields: Fields) -> ActionRequest:
    """The action request of an actions-stream entry (raises on anything else)."""
    return ActionRequest.model_validate_json(fields[DATA_FIELD])


@dataclass(frozen=True, slots=True)
class _Kind:
    """How a value of one model type sits in one flat entry field."""

    encode: Callable[[Any], bytes]
    decode: Callable[[bytes], Any]
    #: What the field reads as when the entry lacks it; None: the entry must have it.
    empty: bytes | None
    #: How the value is spelled, for the documentation ("" for UTF-8 text).
    spelled: str = ""


def _parse_time(raw: bytes) -> datetime:
    return datetime.fromisoformat(raw.decode("utf-8", "replace"))


def _identity(raw: bytes) -> bytes:
    return raw


#: A datetime's empty value does not parse: a dead letter without its times is not one.
_KINDS: dict[Any, _Kind] = {
    str: _Kind(str.encode, lambda raw: raw.decode("utf-8", "replace"), b""),
    bytes: _Kind(_identity, _identity, b"", "raw bytes"),
    int: _Kind(lambda value: str(value).encode(), int, b"0", "decimal"),
    datetime: _Kind(lambda value: value.isoformat().encode(), _parse_time, b"", "ISO 8601"),
    list: _Kind(orjson.dumps, orjson.loads, None, "JSON list"),
    dict: _Kind(orjson.dumps, orjson.loads, None, "JSON object"),
}


@dataclass(frozen=True, slots=True)
class _Flat:
    key: bytes
    kind: _Kind
    missing: bytes | None


class DeadLetterCodec:
    """A `DeadLetter` as the flat fields of its entry (readable with plain XRANGE), and back.

    Driven by the model's fields, in their order: each is the entry field of its own name, text
    as UTF-8, bytes unchanged, ints in decimal, datetimes in ISO 8601, lists and dicts as JSON.
    The model's one mapping of bytes (the source entry's other fields) comes last, one
    ``orig:<name>`` field per item. A field the entry lacks reads as the model's default, else
    as its type's empty value ('', b'', 0); `errors` has neither, so it is required.
    """

    ORIGINAL_PREFIX = b"orig:"

    def __init__(self, model: type[DeadLetter] = DeadLetter) -> None:
        self._model = model
        self._flat: dict[str, _Flat] = {}
        spread = [n for n, f in model.model_fields.items() if f.annotation == dict[str, bytes]]
        if len(spread) > 1:
            raise TypeError(f"{model.__name__}: one mapping of bytes at most, not {spread}")
        self._spread = spread[0] if spread else None
        for name, info in model.model_fields.items():
            if name != self._spread:
                self._flat[name] = self._flat_field(name, info)
        # (name, key, encode) once: encoding runs for every dead letter of a flood of bad input.
        self._encoders = tuple((n, f.key, f.kind.encode) for n, f in self._flat.items())

    def _flat_field(self, name: str, info: FieldInfo) -> _Flat:
        kind = _KINDS.get(get_origin(info.annotation) or info.annotation)
        if kind is None:
            raise TypeError(f"{self._model.__name__}.{name}: no wire form for {info.annotation}")
        missing = kind.empty
        if not info.is_required():
            missing = kind.encode(info.get_default(call_default_factory=True))
        return _Flat(name.encode(), kind, missing)

    def key(self, name: str) -> bytes:
        """The entry field of a model field (KeyError for a name the model does not have)."""
        return self._flat[name].key

    def names(self, annotation: Any) -> tuple[str, ...]:
        """The model fields of one type, e.g. ``str``, in the model's order."""
        return tuple(n for n in self._flat if self._model.model_fields[n].annotation == annotation)

    def describe(self) -> tuple[str, ...]:
        """Each entry field and how it is spelled, in order: for the AsyncAPI document."""
        flat = tuple(
            f"{f.key.decode()} ({f.kind.spelled})" if f.kind.spelled else f.key.decode()
            for f in self._flat.values()
        )
        spread = () if self._spread is None else (f"{self.ORIGINAL_PREFIX.decode()}<name>",)
        return flat + spread

    def raw(self, fields: Fields, name: str) -> bytes:
        """One field of an entry as it is there (its default or empty value when absent)."""
        flat = self._flat[name]
        return fields.get(flat.key, flat.missing or b"")

    def field(self, fields: Fields, name: str) -> Any:
        """One field of an entry, decoded as `decode` does (raises when it cannot be)."""
        flat = self._flat[name]
        raw = fields.get(flat.key, flat.missing)
        if raw is None:
            raise KeyError(flat.key)
        return flat.kind.decode(raw)

    def originals(self, fields: Fields) -> Fields:
        """The source entry's other fields kept in a dead-letter entry, by their own names."""
        cut = len(self.ORIGINAL_PREFIX)
        return {k[cut:]: v for k, v in fields.items() if k.startswith(self.ORIGINAL_PREFIX)}

    def encode(self, letter: DeadLetter) -> Fields:
        """The entry fields of a dead letter, ready for XADD."""
        values = letter.__dict__
        fields = {key: encode(values[name]) for name, key, encode in self._encoders}
        if self._spread is not None:
            for name, value in getattr(letter, self._spread).items():
                fields[self.ORIGINAL_PREFIX + name.encode("utf-8", "surrogateescape")] = value
        return fields

    def decode(self, fields: Fields) -> DeadLetter:
        """Rebuild a dead letter from its entry fields (raises if they are not one)."""
        values = {name: self.field(fields, name) for name in self._flat}
        if self._spread is not None:
            values[self._spread] = _text_names(self.originals(fields))
        return self._model(**values)


DEAD_LETTERS = DeadLetterCodec()


def _text_names(fields: Fields) -> dict[str, bytes]:
    # surrogateescape: a name that is not UTF-8 comes back as the same bytes when encoded.
    return {name.decode("utf-8", "surrogateescape"): value for name, value in fields.items()}


def other_fields(fields: Fields) -> dict[str, bytes]:
    """An entry's fields other than ``__data__``, as a dead letter keeps them (names as text)."""
    return _text_names({name: value for name, value in fields.items() if name != DATA_FIELD})


def dead_letter_fields(dl: DeadLetter) -> Fields:
    """Flat entry fields of a dead letter, readable with plain XRANGE (see `DeadLetterCodec`)."""
    return DEAD_LETTERS.encode(dl)


def parse_dead_letter(fields: Fields) -> DeadLetter:
    """Rebuild a dead letter from its entry fields (raises if they are not one)."""
    return DEAD_LETTERS.decode(fields)


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
