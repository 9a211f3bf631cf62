"""Contract: a dead letter's flat entry fields, byte for byte; reading one; ids and text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import BaseModel

from services.ops.models import DeadLetterRecord
from shared.models import DeadLetter
from shared.wire import (
    DEAD_LETTERS,
    DeadLetterCodec,
    as_text,
    dead_letter_fields,
    entry_id_key,
    parse_dead_letter,
)

LETTER = DeadLetter(
    errors=["invalid_reason_code:é", "missing_reason_code"],
    message="two reasons",
    original=b'{"x":\xff}',
    original_fields={"trace": b"t-1", "\udcff": b"\x00"},
    source_stream="{runbus}:events",
    source_id="1714564800000-3",
    group="validator",
    consumer="validator-host-0",
    stage="validator",
    delivery_count=2,
    first_seen=datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=UTC),
    dead_at=datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))),
    taxonomy_version="tx-1",
    service_version="0.1.0",
    hint={"stage": "training"},
)


def test_a_dead_letter_is_these_fields_in_this_order() -> None:
    # The wire format as `runbus dlq` readers and other languages see it, spelled out.
    assert list(dead_letter_fields(LETTER).items()) == [
        (b"errors", '["invalid_reason_code:é","missing_reason_code"]'.encode()),
        (b"message", b"two reasons"),
        (b"original", b'{"x":\xff}'),
        (b"source_stream", b"{runbus}:events"),
        (b"source_id", b"1714564800000-3"),
        (b"group", b"validator"),
        (b"consumer", b"validator-host-0"),
        (b"stage", b"validator"),
        (b"delivery_count", b"2"),
        (b"first_seen", b"2024-05-01T12:00:00.250000+00:00"),
        (b"dead_at", b"2024-05-01T14:00:00+02:00"),
        (b"taxonomy_version", b"tx-1"),
        (b"service_version", b"0.1.0"),
        (b"hint", b'{"stage":"training"}'),
        (b"orig:trace", b"t-1"),
        (b"orig:\xff", b"\x00"),
    ]
    assert parse_dead_letter(dead_letter_fields(LETTER)) == LETTER


def test_one_field_is_read_by_its_model_name() -> None:
    fields = dead_letter_fields(LETTER)
    assert DEAD_LETTERS.key("stage") == b"stage"
    assert DEAD_LETTERS.field(fields, "stage") == "validator"
    assert DEAD_LETTERS.field(fields, "delivery_count") == 2
    assert DEAD_LETTERS.field(fields, "dead_at") == LETTER.dead_at
    assert DEAD_LETTERS.raw(fields, "errors") == fields[b"errors"]
    assert DEAD_LETTERS.originals(fields) == {b"trace": b"t-1", b"\xff": b"\x00"}
    with pytest.raises(KeyError):
        DEAD_LETTERS.key("no_such_field")


def test_a_missing_field_reads_as_its_default_or_empty_value() -> None:
    assert DEAD_LETTERS.field({}, "message") == ""
    assert DEAD_LETTERS.field({}, "original") == b""
    assert DEAD_LETTERS.field({}, "delivery_count") == 0
    assert DEAD_LETTERS.field({}, "hint") == {}
    assert DEAD_LETTERS.raw({}, "hint") == b"{}"
    assert DEAD_LETTERS.raw({}, "errors") == b""
    with pytest.raises(KeyError):
        DEAD_LETTERS.field({}, "errors")  # every dead letter has its reasons
    with pytest.raises(ValueError):
        DEAD_LETTERS.field({}, "first_seen")
    assert DEAD_LETTERS.field({b"stage": b"\xffx"}, "stage") == "\ufffdx"


def test_a_model_field_without_a_wire_form_is_refused_at_once() -> None:
    class WithFloat(DeadLetter):
        ratio: float

    class TwoMappings(DeadLetter):
        more_fields: dict[str, bytes]

    with pytest.raises(TypeError, match="ratio"):
        DeadLetterCodec(WithFloat)
    with pytest.raises(TypeError, match="one mapping of bytes"):
        DeadLetterCodec(TwoMappings)


def _described(model: type[BaseModel]) -> dict[str, str | None]:
    return {name: f.description for name, f in model.model_fields.items()}


def test_the_api_record_is_the_dead_letter_with_its_bytes_as_text() -> None:
    record = DeadLetterRecord.model_fields
    expected = ["id"]
    for name, field in DeadLetter.model_fields.items():
        expected.append(name)
        if field.annotation is bytes:
            expected += [f"{name}_base64", f"{name}_size"]
        elif field.annotation == dict[str, bytes]:
            expected += [f"{name}_base64", f"{name}_escaped"]  # values, then names
    # Then what the view adds: readable, and where retention archived it (None: on the stream).
    assert list(record) == [*expected, "readable", "archived_at", "archive_redriven"]
    same_type = {
        n for n, f in DeadLetter.model_fields.items() if record[n].annotation == f.annotation
    }
    assert same_type == set(DeadLetter.model_fields) - {"original", "original_fields"}
    shared = {n: d for n, d in _described(DeadLetter).items() if n in same_type}
    assert shared.items() <= _described(DeadLetterRecord).items()
    assert (
        record["original"].description
        == "The source entry's __data__, unchanged (text, or base64)."
    )


def test_entry_ids_sort_by_their_numbers_not_as_text() -> None:
    ids = ["5-10", "10-0", "5-9", "5"]
    assert sorted(ids, key=entry_id_key) == ["5", "5-9", "5-10", "10-0"]


def test_redis_values_read_as_text_whatever_their_bytes() -> None:
    assert as_text(b"1-0") == as_text("1-0") == "1-0"
    assert as_text(b"\xffx") == "\ufffdx"
    assert as_text(None) == ""
