"""Hypothesis strategies for valid events of every shape, and for events one step from valid.

`valid_bodies()` draws events the validator must accept, of either dialect, with every
optional field present, null or absent, keys in any order, text of any code point, free-form
objects of any JSON value, times in every RFC 3339 form (offsets, one to six fractional
digits, none), written compactly or as the stdlib writes JSON (spaces, ``\\uXXXX`` escapes).

`near_valid_bodies()` takes such an event one step off: the places where a lax parser or
validator could read more than pydantic does, or the same text differently — times as numbers
or other ISO 8601 forms or with more fractional digits, integers beyond 64 bits, floats that
need an exponent, booleans and floats for integers, patterns against a final newline, lengths
at their limits in astral characters, duplicate and escaped keys, NaN, lone surrogates, NUL,
nesting around the limit, bodies around the size limit.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
from hypothesis import strategies as st

from shared.models import EVENT_ID_PATTERN
from shared.taxonomy import CODE_REQUIRED_SEVERITIES, SEED_TAXONOMY, SEVERITIES, STAGES
from shared.validation import DEFAULT_MAX_BYTES, MAX_NESTING
from tests.unit.badinput.corpus import NASTY
from tests.unit.badinput.strategies import texts

Doc = dict[str, Any]

#: Numbers of every kind the fast path writes as pydantic does: integers shorter than 19
#: digits, floats below 1e16 in magnitude (`ODD_NUMBERS` has the others).
numbers = st.one_of(
    st.integers(min_value=-(10**18) + 1, max_value=10**18 - 1),
    st.integers(min_value=-(2**31), max_value=2**31),
    st.floats(min_value=-1e16, max_value=1e16, exclude_min=True, exclude_max=True),
    st.floats(min_value=-1e-3, max_value=1e-3),
    st.sampled_from([0.0, -0.0, 1e15, 9999999999999998.0, 1e-5, 1e-7, 5e-324, 0.1 + 0.2]),
)
values = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, texts),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)),
    max_leaves=10,
)
objects = st.dictionaries(texts, values, max_size=5)
names = st.one_of(st.text(min_size=1, max_size=30), st.sampled_from([t for t in NASTY if t]))
offsets = st.one_of(
    st.just(UTC),
    st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m))),
)


@st.composite
def times(draw: st.DrawFn) -> str:
    """An instant in the accepted window, as RFC 3339 text of any of its forms."""
    moment = draw(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2099, 12, 30)))
    date, clock = moment.strftime("%Y-%m-%d"), moment.strftime("%H:%M:%S")
    digits = draw(st.integers(0, 6))
    fraction = f".{moment.microsecond:06d}"[: digits + 1] if digits else ""
    zone = draw(st.one_of(st.sampled_from(["", "Z", "+00:00", "-00:00"]), offsets.map(_offset)))
    return f"{date}T{clock}{fraction}{zone}"


def _offset(zone: timezone) -> str:
    return datetime(2000, 1, 1, tzinfo=zone).isoformat()[-6:].replace("+00:00", "Z")


def _maybe(draw: st.DrawFn, doc: Doc, name: str, strategy: st.SearchStrategy[Any]) -> None:
    """The optional field `name` present with a value, null, or absent."""
    how = draw(st.sampled_from(["value", "null", "absent"]))
    if how == "value":
        doc[name] = draw(strategy)
    elif how == "null":
        doc[name] = None


@st.composite
def brewslm(draw: st.DrawFn) -> Doc:
    """A valid BrewSLM event: a stage, and a severity and reason code the taxonomy allows."""
    stage = draw(st.sampled_from(STAGES))
    severity = draw(st.sampled_from(SEVERITIES))
    codes = [c for c in SEED_TAXONOMY.reason_codes.values() if c.stage in (stage, "system")]
    if severity in CODE_REQUIRED_SEVERITIES:
        codes = [c for c in codes if not c.info_only]
    doc: Doc = {"project_id": draw(st.integers(0, 10**18 - 1)), "run_id": draw(names),
                "stage": stage, "severity": severity, "ts": draw(times())}  # fmt: skip
    if severity in CODE_REQUIRED_SEVERITIES or draw(st.booleans()):
        doc["reason_code"] = draw(st.sampled_from(codes)).code
    for name, strategy in (("parent_run_id", names), ("summary", texts)):
        _maybe(draw, doc, name, strategy)
    if draw(st.booleans()):
        doc["actor"] = draw(names)
    if draw(st.booleans()):
        doc["payload"] = draw(objects)
    return doc


@st.composite
def pulse(draw: st.DrawFn) -> Doc:
    """A valid Pulse event: a catalog type with its severity."""
    event_type, severity = draw(st.sampled_from(sorted(SEED_TAXONOMY.pulse_types.items())))
    doc: Doc = {"event_type": event_type, "severity": severity, "run_id": draw(names),
                "created_at": draw(times())}  # fmt: skip
    for name, strategy in (("parent_run_id", names), ("details", objects),
                           ("project_id", st.integers(0, 10**18 - 1))):  # fmt: skip
        _maybe(draw, doc, name, strategy)
    if draw(st.booleans()):
        doc["message"] = draw(texts)
    return doc


@st.composite
def valid_documents(draw: st.DrawFn) -> Doc:
    """A valid event of either dialect, its dialect and event id given or not, keys shuffled."""
    doc: Doc = draw(st.one_of(brewslm(), pulse()))
    if draw(st.booleans()):
        doc["dialect"] = "pulse" if "event_type" in doc else "brewslm"
    _maybe(draw, doc, "event_id", st.from_regex(EVENT_ID_PATTERN, fullmatch=True))
    order = draw(st.permutations(sorted(doc)))
    return {name: doc[name] for name in order}


def write(draw: st.DrawFn, doc: Any) -> bytes:
    """`doc` as JSON: compact (orjson), or as the stdlib writes it (spaces, ASCII escapes)."""
    if draw(st.booleans()):
        return orjson.dumps(doc)
    return json.dumps(doc, ensure_ascii=draw(st.booleans())).encode()


@st.composite
def valid_bodies(draw: st.DrawFn) -> bytes:
    """The JSON body of a valid event."""
    return write(draw, draw(valid_documents()))


def _time_field(doc: Doc) -> str:
    return "created_at" if "event_type" in doc else "ts"


def _object_field(doc: Doc) -> str:
    return "details" if "event_type" in doc else "payload"


#: Times pydantic reads, or refuses, in forms the fast path leaves to it.
ODD_TIMES: tuple[Any, ...] = (
    0, 1, 1700000000, 1700000000.5, 1.7e12, -1, 4102444800, "1700000000", "1700000000.5",
    "2024-05-01", "2024-05-01T12:00", "2024-05-01T12", "2024-05-01t12:00:00z",
    "2024-05-01 12:00:00Z", "2024-05-01T12:00:00.1234567Z", "2024-05-01T12:00:00.9999999Z",
    "2024-05-01T12:00:00.123456789+01:00", "2024-05-01T12:00:00,5Z", "2024-05-01T12:00:00+0100",
    "2024-05-01T12:00:00+01", "2024-05-01T12:00:00+05:30:15", "2024-05-01T12:00:00+24:00",
    "2024-05-01T12:00:00+23:60", "2024-05-01T12:00:00-23:59", "2024-01-01T23:59:60Z",
    "2024-05-01T24:00:00Z", "2023-02-29T00:00:00Z", "2024-05-01T12:00:00.Z",
    "1970-01-01T00:00:00+00:01", "1969-12-31T23:59:59-00:01", "2099-12-31T23:59:59-01:00",
    "2100-01-01T00:59:59+01:00", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00",
    "20240501T120000Z", "2024-W18-3T12:00:00Z", "2024-122T12:00:00Z", " 2024-05-01T12:00:00Z",
    "2024-05-01T12:00:00Z ", "2024-05-01T12:00:00Z\n", "２０２４-05-01T12:00:00Z",
    None, True, [], {},
)  # fmt: skip
#: Values for integer fields pydantic's StrictInt refuses or takes at its bounds.
ODD_INTS: tuple[Any, ...] = (True, False, 7.0, -0.0, "7", 2**63 - 1, 2**63, 2**64, -1, None, [7])
#: Free-form values whose numbers the two paths could read or write differently.
ODD_NUMBERS: tuple[Any, ...] = (
    2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**30, -(10**30),
    1e16, -1e16, 1e16 - 2, 1.5e16, 1e300, -1e300, 1e-300, 5e-324, -0.0, 1e15 + 0.5,
)  # fmt: skip
#: Number spellings spliced into a free-form object: not JSON, out of range, needing an
#: exponent, hard to round.
ODD_LITERALS: tuple[bytes, ...] = (
    b"NaN", b"-Infinity", b"Infinity", b"1e999", b"-1e999", b"1E400", b"01", b"-", b"1.", b".5",
    b"1e", b"0x10", b"1E+2", b"1e-400", b"1e16", b"1E16", b"-1.5e+16", b"9999999999999999.5",
    b"-9999999999999999.5", b"10000000000000000.0", b"999999999999999.95",
    b"0.1000000000000000055511151231257827", b"9007199254740993", b"2.2250738585072011e-308",
    b"18446744073709551615", b"18446744073709551616", b"-9223372036854775808",
    b"-9223372036854775809", b"1" + b"0" * 400, b"0.30000000000000004",
)  # fmt: skip
#: Raw text spliced into a string of the body.
ODD_ESCAPES: tuple[bytes, ...] = (
    b"\\ud800", b"\\udfff", b"\\ud83d\\ude00", b"\\u0000", b"\\u001f", b"\x00", b"\x1f", b"\\/",
    b"\\u00e9", b"\xc3\xa9", b"\xed\xa0\x80", b"\\u2028", b"\\\\", b'\\"', b"\\x", b"\\u12",
)  # fmt: skip


@st.composite
def near_valid_bodies(draw: st.DrawFn) -> bytes:
    """A valid event's body one step off where a lax reader could differ from pydantic."""
    doc = draw(valid_documents())
    step = draw(st.sampled_from(sorted(_STEPS)))
    return _STEPS[step](draw, doc)


def _odd_time(draw: st.DrawFn, doc: Doc) -> bytes:
    doc[_time_field(doc)] = draw(st.sampled_from(ODD_TIMES))
    return write(draw, doc)


def _odd_int(draw: st.DrawFn, doc: Doc) -> bytes:
    doc["project_id"] = draw(st.sampled_from(ODD_INTS))
    return json.dumps(doc).encode()  # the stdlib writes ints of any size


def _odd_number(draw: st.DrawFn, doc: Doc) -> bytes:
    field = _object_field(doc)
    doc[field] = {**(doc.get(field) or {}), draw(texts): draw(st.sampled_from(ODD_NUMBERS))}
    return json.dumps(doc).encode()


def _odd_literal(draw: st.DrawFn, doc: Doc) -> bytes:
    literal = draw(st.sampled_from(ODD_LITERALS))
    field = _object_field(doc).encode()
    return orjson.dumps(doc)[:-1] + b',"' + field + b'":{"n":' + literal + b"}}"


def _odd_id(draw: st.DrawFn, doc: Doc) -> bytes:
    base = draw(st.from_regex(EVENT_ID_PATTERN, fullmatch=True))
    doc["event_id"] = draw(st.sampled_from([base + "\n", "\n" + base, base + " ", "é" + base,
                                            "x" * 128, "x" * 129, "", base + "\x00"]))  # fmt: skip
    return write(draw, doc)


def _at_limits(draw: st.DrawFn, doc: Doc) -> bytes:
    char = draw(st.sampled_from(["x", "é", "😀", "\U0010ffff", "\x00"]))
    field, limit = draw(st.sampled_from([("run_id", 256), ("summary", 4096), ("message", 4096),
                                         ("actor", 256), ("parent_run_id", 256)]))  # fmt: skip
    doc[field] = char * (limit + draw(st.integers(-1, 1)))
    return write(draw, doc)


def _duplicate(draw: st.DrawFn, doc: Doc) -> bytes:
    name = draw(st.sampled_from(sorted(doc)))
    other = orjson.dumps({name: draw(values)})[1:-1]
    body = orjson.dumps(doc)
    if draw(st.booleans()):
        return b"{" + other + b"," + body[1:]  # the document's own value comes last: it wins
    return body[:-1] + b"," + other + b"}"


def _escaped_key(draw: st.DrawFn, doc: Doc) -> bytes:
    name = draw(st.sampled_from(sorted(doc)))
    escaped = "".join(f"\\u{ord(c):04x}" if draw(st.booleans()) else c for c in name)
    return orjson.dumps(doc).replace(f'"{name}":'.encode(), f'"{escaped}":'.encode(), 1)


def _splice(draw: st.DrawFn, doc: Doc) -> bytes:
    field = "summary" if "stage" in doc else "message"
    doc[field] = "@@"
    return orjson.dumps(doc).replace(b"@@", draw(st.sampled_from(ODD_ESCAPES)), 1)


def _nested(draw: st.DrawFn, doc: Doc) -> bytes:
    depth = draw(st.integers(MAX_NESTING - 6, MAX_NESTING + 2))
    field = _object_field(doc).encode()
    head = orjson.dumps({k: v for k, v in doc.items() if k != field.decode()})[:-1]
    inner = b"[" * depth + b"]" * depth
    return head + b',"' + field + b'":{"a":' + inner + b"}}"


def _sized(draw: st.DrawFn, doc: Doc) -> bytes:
    field = _object_field(doc)
    doc[field] = {"p": ""}
    pad = DEFAULT_MAX_BYTES - len(orjson.dumps(doc)) + draw(st.integers(-1, 1))
    doc[field] = {"p": "x" * max(0, pad)}
    return orjson.dumps(doc)


def _wrong_dialect(draw: st.DrawFn, doc: Doc) -> bytes:
    doc["dialect"] = draw(st.sampled_from([None, "BREWSLM", "pulse", "brewslm", 1, ""]))
    if draw(st.booleans()):
        doc.pop("dialect")
        doc[draw(st.sampled_from(["event_type", "stage"]))] = "run.completed"
    return write(draw, doc)


_STEPS = {step.__name__: step for step in (_odd_time, _odd_int, _odd_number, _odd_literal,
          _odd_id, _at_limits, _duplicate, _escaped_key, _splice, _nested, _sized,
          _wrong_dialect)}  # fmt: skip
