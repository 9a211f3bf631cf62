"""Contract: the wire format, including what FastStream's own publisher writes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import orjson
from faststream.redis.parser.binary import BinaryMessageFormatV1
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.models import DeadLetter, RunEvent
from shared.taxonomy import SEED_TAXONOMY
from shared.validation import Accepted, validate_bytes
from shared.wire import (
    DATA_FIELD,
    dead_letter_fields,
    event_body,
    event_fields,
    parse_dead_letter,
    unwrap_body,
)
from tests.unit.contract.events import brewslm, pulse


def faststream_binary(message: Any, headers: dict[str, Any] | None = None) -> bytes:
    """What FastStream 0.7's Redis publisher puts in ``__data__``."""
    return asyncio.run(
        BinaryMessageFormatV1.encode(
            message=message, reply_to=None, headers=headers, correlation_id="corr-1"
        )
    )


def legacy_envelope(body: bytes) -> bytes:
    """FastStream's older JSON envelope: the body as a string under "data"."""
    return orjson.dumps({"data": body.decode(), "headers": {"correlation_id": "corr-1"}})


def test_the_entry_is_one_data_field_holding_the_json_body() -> None:
    event = brewslm()
    fields = event_fields(event)
    assert list(fields) == [DATA_FIELD] == [b"__data__"]
    assert orjson.loads(fields[DATA_FIELD]) == event
    assert unwrap_body(fields[DATA_FIELD]) == fields[DATA_FIELD]


def test_a_plain_json_body_round_trips_through_validation() -> None:
    accepted = validate_bytes(event_body(pulse()), SEED_TAXONOMY)
    assert isinstance(accepted, Accepted)
    body = event_body(accepted.event)
    assert unwrap_body(body) == body
    again = validate_bytes(body, SEED_TAXONOMY)
    assert isinstance(again, Accepted)
    assert again.event == accepted.event
    assert b"null" not in body  # None fields are left out of the body


def test_faststream_binary_output_of_a_dict_is_accepted() -> None:
    event = brewslm(event_id="evt-1")
    raw = faststream_binary(event, headers={"x-trace": "abc"})
    assert raw.startswith(b"\x89BIN\r\n\x1a\n")
    body = unwrap_body(raw)
    assert body is not None
    assert orjson.loads(body) == event
    assert isinstance(validate_bytes(body, SEED_TAXONOMY), Accepted)


def test_faststream_binary_output_of_a_dumped_model_and_of_bytes_is_accepted() -> None:
    model = RunEvent.model_validate(brewslm())
    for message in (model.model_dump(mode="json"), event_body(model)):
        body = unwrap_body(faststream_binary(message))
        assert body is not None
        result = validate_bytes(body, SEED_TAXONOMY)
        assert isinstance(result, Accepted)
        assert result.event == model


def test_faststream_legacy_json_envelope_is_accepted() -> None:
    body = event_body(pulse())
    assert unwrap_body(legacy_envelope(body)) == body


_ascii = st.text(st.characters(max_codepoint=127), max_size=20)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300), st.dictionaries(_ascii, _ascii, max_size=4))
def test_unwrap_agrees_with_faststreams_own_parser(body: bytes, headers: dict[str, str]) -> None:
    raw = faststream_binary(body, headers)
    expected_body, _ = BinaryMessageFormatV1.parse(raw)
    assert unwrap_body(raw) == expected_body == body


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300), st.dictionaries(st.text(max_size=8), st.text(), max_size=3))
def test_unwrap_finds_the_body_whatever_the_headers(body: bytes, headers: dict[str, str]) -> None:
    # FastStream 0.7.8 writes a non-ASCII header's length in characters, so its own parser
    # misreads it; the body offset in the header block is right, and that is what we use.
    assert unwrap_body(faststream_binary(body, headers)) == body


def test_a_broken_binary_envelope_yields_none() -> None:
    good = faststream_binary(b"{}")
    assert unwrap_body(good[:12]) is None  # truncated header
    assert unwrap_body(good[:8] + b"\x00\x02" + good[10:]) is None  # unknown version
    far = good[:14] + (len(good) + 1).to_bytes(4, "big") + good[18:]
    assert unwrap_body(far) is None  # data offset past the end


def test_only_a_data_and_headers_object_is_taken_for_the_legacy_envelope() -> None:
    # documented quirk: a body whose top level is {"data": "<string>"} is an envelope
    assert unwrap_body(b'{"data":"{}"}') == b"{}"
    # an event that merely starts with a "data" key is left alone
    with_more = b'{"data":"x","stage":"training"}'
    assert unwrap_body(with_more) == with_more
    not_a_string = b'{"data":{"a":1}}'
    assert unwrap_body(not_a_string) == not_a_string
    assert unwrap_body(b'{"data": broken') == b'{"data": broken'


_texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=30)
_times = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(2099, 1, 1), timezones=st.just(UTC)
)


@settings(max_examples=100, deadline=None)
@given(
    original=st.binary(max_size=500),
    field_names=st.lists(st.binary(min_size=1, max_size=10), max_size=3),
    field_value=st.binary(max_size=50),
    errors=st.lists(_texts, min_size=1, max_size=4),
    message=_texts,
    hint=st.dictionaries(_texts, _texts, max_size=3),
    times=st.tuples(_times, _times),
    count=st.integers(0, 10**6),
)
def test_dead_letter_fields_round_trip_with_arbitrary_original_bytes(
    original: bytes,
    field_names: list[bytes],
    field_value: bytes,
    errors: list[str],
    message: str,
    hint: dict[str, str],
    times: tuple[datetime, datetime],
    count: int,
) -> None:
    # a source entry's other field names arrive as bytes; the validator keeps them as text
    originals = {n.decode("utf-8", "surrogateescape"): field_value for n in field_names}
    dead = DeadLetter(
        errors=errors,
        message=message,
        original=original,
        original_fields=originals,
        source_stream="{runbus}:events",
        source_id="1714564800000-0",
        group="validator",
        consumer="validator-host-0",
        stage="validator",
        delivery_count=count,
        first_seen=times[0],
        dead_at=times[1],
        taxonomy_version=SEED_TAXONOMY.version,
        service_version="0.1.0",
        hint=hint,
    )
    fields = dead_letter_fields(dead)
    assert fields[b"original"] == original
    assert all(isinstance(k, bytes) and isinstance(v, bytes) for k, v in fields.items())
    assert parse_dead_letter(fields) == dead
