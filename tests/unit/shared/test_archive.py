"""The dead-letter archive's row: a dead-letter entry whole, and its query columns."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.archive import archive_row, fields_of, pack_fields, unpack_fields
from shared.wire import DEAD_LETTERS, entry_time
from tests.unit.ops.builders import dead_fields

names_and_values = st.dictionaries(st.binary(max_size=40), st.binary(max_size=200), max_size=12)


@given(names_and_values)
def test_packed_fields_come_back_unchanged_in_order(fields: dict[bytes, bytes]) -> None:
    back = unpack_fields(pack_fields(fields))
    assert back == fields
    assert list(back) == list(fields)


@pytest.mark.parametrize("cut", [1, 3, 5, 9])
def test_a_cut_blob_is_refused(cut: int) -> None:
    blob = pack_fields({b"name": b"value"})
    with pytest.raises(ValueError, match="archived fields"):
        unpack_fields(blob[:-cut])


def test_a_dead_letter_becomes_its_row_and_back() -> None:
    fields = dead_fields(
        ["invalid_reason_code:x", "missing_summary"], b"\xff\x00raw", stage="coach"
    )
    row = archive_row("{ns}:dead", "1700000000123-4", fields)
    assert (row.ms, row.seq) == (1700000000123, 4)
    assert orjson.loads(row.errors) == ["invalid_reason_code:x", "missing_summary"]
    assert row.stage == "coach"
    assert row.dead_at == entry_time("1700000000123-4")
    assert row.original == b"\xff\x00raw"
    assert row.size == sum(len(k) + len(v) for k, v in fields.items())
    assert fields_of(row.original, row.other) == fields


def test_nul_leaves_the_query_columns_but_not_the_bytes() -> None:
    fields = dead_fields(["invalid_reason_code:a\x00b"], b"{}", source_id="1-0")
    fields[DEAD_LETTERS.key("stage")] = b"val\x00idator"
    row = archive_row("{ns}:dead", "5-0", fields)
    assert "\x00" not in row.stage and "\x00" not in row.errors
    assert fields_of(row.original, row.other) == fields


def test_a_foreign_entry_is_archived_as_it_is() -> None:
    fields = {b"hello": b"world", b"errors": b"not json"}
    row = archive_row("{ns}:dead", "5-1", fields)
    assert row.errors == "[]"
    assert row.stage == ""
    back = fields_of(row.original, row.other)
    assert back[b"hello"] == b"world" and back[b"errors"] == b"not json"
