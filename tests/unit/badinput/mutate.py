"""A seeded mutation fuzzer: many hostile entries per second, reproducible from a seed.

Hypothesis draws the seed and the mutation kinds (so a failure shrinks to a small recipe);
`mutants` expands a recipe into entries by applying one to three mutations to entries of the
corpus that are valid. Drawing each entry with hypothesis costs about 5 ms; this costs about
50 µs, which is what makes the full run (>= 100k entries) take a minute, not ten.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

import orjson

from shared.wire import DATA_FIELD, FASTSTREAM_MAGIC, ORIGIN_ID_FIELD
from tests.unit.badinput.corpus import NASTY, ODD_VALUES, corpus, faststream_binary

Fields = dict[bytes, bytes]
Mutator = Callable[[random.Random, Fields], Fields]
_TIMES: tuple[Any, ...] = ("0001-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "1969-12-31T23:59:59Z",
    "2099-12-31T23:59:59Z", "2100-01-01T00:00:00Z", "9999-12-31T23:59:59.999999+14:00",
    "2024-02-30T00:00:00Z", "2024-05-01T12:00:00", 0, -1, 4102444800, 1.5, "7")  # fmt: skip
_BAD_BYTES = (b"\xc0\xaf", b"\xed\xa0\x80", b"\xff", b"\x00", b"\\ud800", b"\\udfff", b'"', b"\\")


@cache
def _bases() -> tuple[Fields, ...]:
    return tuple(c.fields for c in corpus() if c.expect == "valid" and DATA_FIELD in c.fields)


def _doc(fields: Fields) -> dict[str, Any] | None:
    try:
        doc = orjson.loads(fields.get(DATA_FIELD, b""))
    except orjson.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) else None


def _with_doc(fields: Fields, doc: dict[str, Any]) -> Fields:
    try:
        return {**fields, DATA_FIELD: orjson.dumps(doc)}
    except TypeError:  # a value orjson cannot write (too deep): keep the entry as it was
        return fields


def flip(rng: random.Random, fields: Fields) -> Fields:
    data = bytearray(fields.get(DATA_FIELD, b"") or b"{}")
    for _ in range(rng.randint(1, 4)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    return {**fields, DATA_FIELD: bytes(data)}


def truncate(rng: random.Random, fields: Fields) -> Fields:
    data = fields.get(DATA_FIELD, b"")
    return {**fields, DATA_FIELD: data[: rng.randint(0, max(0, len(data) - 1))]}


def splice(rng: random.Random, fields: Fields) -> Fields:
    data = fields.get(DATA_FIELD, b"")
    at = rng.randint(0, len(data))
    return {**fields, DATA_FIELD: data[:at] + rng.choice(_BAD_BYTES) + data[at:]}


def nasty_text(rng: random.Random, fields: Fields) -> Fields:
    doc = _doc(fields)
    if doc is None:
        return fields
    key = rng.choice(["summary", "run_id", "actor", "message", "stage", "reason_code", "x"])
    doc[key] = rng.choice(NASTY) + rng.choice(["", rng.choice(NASTY)])
    return _with_doc(fields, doc)


def odd_value(rng: random.Random, fields: Fields) -> Fields:
    doc = _doc(fields)
    if doc is None or not doc:
        return fields
    doc[rng.choice(sorted(doc))] = rng.choice(ODD_VALUES)
    return _with_doc(fields, doc)


def drop_field(rng: random.Random, fields: Fields) -> Fields:
    doc = _doc(fields)
    if doc:
        doc.pop(rng.choice(sorted(doc)))
        return _with_doc(fields, doc)
    return fields


def odd_time(rng: random.Random, fields: Fields) -> Fields:
    doc = _doc(fields)
    if doc is None:
        return fields
    doc["created_at" if "event_type" in doc else "ts"] = rng.choice(_TIMES)
    return _with_doc(fields, doc)


def deep(rng: random.Random, fields: Fields) -> Fields:
    doc = _doc(fields)
    if doc is None:
        return fields
    depth = rng.choice([10, 97, 98, 99, 100, 250, 1023, 1030])
    head = orjson.dumps(doc)[:-1] + (b"," if len(doc) else b"") + b'"payload":{"a":'
    return {**fields, DATA_FIELD: head + b"[" * depth + b"]" * depth + b"}}"}


def frame(rng: random.Random, fields: Fields) -> Fields:
    data = fields.get(DATA_FIELD, b"")
    if rng.random() < 0.5:
        return {**fields, DATA_FIELD: faststream_binary(data)}
    garbage = rng.randbytes(rng.randint(0, 12))
    return {**fields, DATA_FIELD: FASTSTREAM_MAGIC + garbage + data}


def legacy(rng: random.Random, fields: Fields) -> Fields:
    data = fields.get(DATA_FIELD, b"").decode("utf-8", "replace")
    inner: Any = data if rng.random() < 0.8 else rng.choice(ODD_VALUES)
    return {**fields, DATA_FIELD: orjson.dumps({"data": inner, "headers": {}})}


def extra_fields(rng: random.Random, fields: Fields) -> Fields:
    extra = {rng.randbytes(rng.randint(1, 8)): rng.randbytes(rng.randint(0, 64))}
    if rng.random() < 0.3:
        extra[ORIGIN_ID_FIELD] = rng.choice([b"1-1", b"'; --", rng.randbytes(10)])
    extra.pop(DATA_FIELD, None)
    return {**fields, **extra}


def no_data(rng: random.Random, fields: Fields) -> Fields:
    rest = {k: v for k, v in fields.items() if k != DATA_FIELD}
    return rest or {b"data": fields.get(DATA_FIELD, b"")}


_ALL: tuple[Mutator, ...] = (
    flip,
    truncate,
    splice,
    nasty_text,
    odd_value,
    drop_field,
    odd_time,
    deep,
    frame,
    legacy,
    extra_fields,
    no_data,
)
MUTATORS: dict[str, Mutator] = {m.__name__: m for m in _ALL}


def mutants(seed: int, count: int, kinds: Sequence[str] = tuple(MUTATORS)) -> list[Fields]:
    """`count` entries: valid corpus entries with one to three mutations of these kinds."""
    rng = random.Random(seed)
    bases = _bases()
    out = []
    for _ in range(count):
        fields = dict(rng.choice(bases))
        for _ in range(rng.randint(1, 3)):
            fields = MUTATORS[rng.choice(kinds)](rng, fields)
        out.append(fields)
    return out
