"""Hypothesis strategies for hostile wire entries.

`entries()` draws whole stream entries: mostly events mutated in one or a few places (wrong
types, nasty text, extra keys, odd times, deep payloads), plus raw bytes, truncated and
spliced JSON, escaped lone surrogates, invalid UTF-8, FastStream binary frames with garbage,
legacy envelopes, entries without ``__data__`` and entries with extra fields. Each drawn entry
comes with the document it encodes when it is JSON, so verbatim storage can be checked.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import orjson
from hypothesis import strategies as st

from shared.wire import DATA_FIELD, FASTSTREAM_MAGIC, ORIGIN_ID_FIELD
from tests.unit.badinput.corpus import NASTY, TS, event, faststream_binary, pulse
from tests.unit.badinput.mutate import MUTATORS

Fields = dict[bytes, bytes]
#: ``RUNBUS_FUZZ_FULL=1``: the long run (``make test-fuzz``); sizes below are its multipliers.
FULL = os.environ.get("RUNBUS_FUZZ_FULL", "") not in ("", "0")


def examples(default: int, full: int) -> int:
    """Hypothesis examples for this run."""
    return full if FULL else default


texts = st.one_of(
    st.text(max_size=40),
    st.sampled_from(NASTY),
    st.text(st.characters(codec="utf-8"), max_size=200),
    st.builds(lambda a, b: a + b, st.sampled_from(NASTY), st.text(max_size=10)),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)),
    max_leaves=12,
)
times = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)).map(
        lambda d: d.isoformat()
    ),
    st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
    ).map(lambda d: d.isoformat()),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.just(TS),
    texts,
)
FIELDS = ("project_id", "run_id", "parent_run_id", "stage", "severity", "reason_code", "actor",
          "summary", "payload", "ts", "event_id", "dialect")  # fmt: skip
PULSE_FIELDS = ("event_type", "severity", "run_id", "message", "details", "created_at")


@st.composite
def documents(draw: st.DrawFn) -> Any:
    """A valid event with a few fields replaced, removed or added."""
    doc: dict[str, Any] = draw(st.sampled_from([event(), pulse()]))
    names = FIELDS if "stage" in doc else PULSE_FIELDS
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(names))
        how = draw(st.sampled_from(["value", "text", "time", "drop", "extra", "payload"]))
        if how == "drop":
            doc.pop(name, None)
        elif how == "extra":
            doc[draw(texts)] = draw(json_values)
        elif how == "time":
            doc["ts" if "stage" in doc else "created_at"] = draw(times)
        elif how == "payload":
            doc["payload" if "stage" in doc else "details"] = draw(
                st.dictionaries(texts, json_values, max_size=6)
            )
        else:
            doc[name] = draw(json_values if how == "value" else texts)
    return doc


def _nested(depth: int) -> bytes:
    return b'{"project_id":7,"run_id":"r","stage":"training","severity":"info","ts":"' + (
        TS.encode() + b'","payload":{"a":' + b"[" * depth + b"]" * depth + b"}}"
    )


@st.composite
def raw_bodies(draw: st.DrawFn) -> bytes:
    """Bytes that are not (quite) a JSON event."""
    good = orjson.dumps(draw(st.sampled_from([event(), pulse()])))
    kind = draw(st.sampled_from(["bytes", "truncate", "splice", "surrogate", "utf8", "deep"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "truncate":
        return good[: draw(st.integers(0, len(good) - 1))]
    at = draw(st.integers(0, len(good)))
    if kind == "splice":
        return good[:at] + draw(st.binary(min_size=1, max_size=8)) + good[at:]
    if kind == "surrogate":
        lone = draw(st.sampled_from([b"\\ud800", b"\\udbff", b"\\udc00", b"\\udfff"]))
        return good.replace(b'"info"', b'"info' + lone + b'"', 1)
    if kind == "utf8":
        bad = draw(st.sampled_from([b"\xc0\xaf", b"\xe0\x80\xaf", b"\xed\xa0\x80", b"\xff"]))
        return good.replace(b'"info"', b'"in' + bad + b'fo"', 1)
    return _nested(draw(st.integers(90, 1100)))


@st.composite
def entries(draw: st.DrawFn) -> Fields:
    """One hostile stream entry."""
    kind = draw(st.sampled_from(["doc", "doc", "doc", "raw", "frame", "legacy", "nodata"]))
    if kind == "nodata":
        name = draw(st.binary(max_size=10)).replace(DATA_FIELD, b"")
        return {name: draw(st.binary(max_size=100))}
    if kind == "raw":
        data = draw(raw_bodies())
    else:
        data = orjson.dumps(draw(documents()))
        if kind == "frame":
            garbage = draw(st.binary(max_size=6))
            data = faststream_binary(data) if not garbage else FASTSTREAM_MAGIC + garbage + data
        elif kind == "legacy":
            data = orjson.dumps({"data": data.decode(), "headers": {}})
    extra = draw(st.dictionaries(st.binary(min_size=1, max_size=12), st.binary(), max_size=2))
    fields = {**extra, DATA_FIELD: data}
    fields.pop(ORIGIN_ID_FIELD, None)
    if draw(st.integers(0, 9)) == 0:
        fields[ORIGIN_ID_FIELD] = draw(st.one_of(st.binary(max_size=40), st.just(b"1-1")))
    return fields


#: A mutation-fuzzer recipe: a seed and the mutation kinds to use (see `mutate.mutants`).
recipes = st.tuples(
    st.integers(min_value=0, max_value=2**32),
    st.lists(st.sampled_from(sorted(MUTATORS)), min_size=1, max_size=4, unique=True),
)
