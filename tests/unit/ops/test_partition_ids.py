"""Dead-letter ids over partitions: the qualified form, the cursor rule, the merged order."""

from __future__ import annotations

import re

import pytest

from services.ops.errors import InvalidStreamId
from services.ops.partitions import bus_stream, lookups, merged, shown_id
from services.ops.stream_ids import (
    DEAD_LETTER_ID_PATTERN,
    DeadLetterId,
    after_in,
    before_in,
    parse_dead_letter_id,
    read_after,
)
from shared.names import Names, StreamKind


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("5-1", DeadLetterId("5-1")), ("0:5-1", DeadLetterId("5-1", 0)),
     ("1023:5-1", DeadLetterId("5-1", 1023))],
)  # fmt: skip
def test_an_id_is_plain_or_qualified_by_its_partition(text: str, parsed: DeadLetterId) -> None:
    assert parse_dead_letter_id(text) == parsed
    assert re.fullmatch(DEAD_LETTER_ID_PATTERN, text)


@pytest.mark.parametrize("text", ["01:5-1", "1024:5-1", ":5-1", "3:", "3:5", "-1:5-1", "3:05-1"])
def test_a_malformed_qualified_id_is_refused_with_the_stable_code(text: str) -> None:
    with pytest.raises(InvalidStreamId, match="not a dead-letter id"):
        parse_dead_letter_id(text, "id")
    assert not re.fullmatch(DEAD_LETTER_ID_PATTERN, text)


def test_a_malformed_plain_id_keeps_the_stream_id_message() -> None:
    with pytest.raises(InvalidStreamId, match="not a stream entry id"):
        parse_dead_letter_id("99999999999999999999-0", "ENTRY_ID")


def test_the_cursor_breaks_ties_by_partition_index() -> None:
    cursor = DeadLetterId("7-0", 3)
    # after 3:7-0: partitions up to 3 start after 7-0, later ones at 7-0 itself
    assert [after_in(cursor, p) for p in (2, 3, 4)] == ["(7-0", "(7-0", "7-0"]
    # before 3:7-0: earlier partitions end at 7-0 itself, the others before it
    assert [before_in(cursor, p) for p in (2, 3, 4)] == ["7-0", "(7-0", "(7-0"]
    # a plain cursor excludes the ties of every partition
    plain = DeadLetterId("7-0")
    assert {after_in(plain, p) for p in range(5)} == {"(7-0"}
    assert {before_in(plain, p) for p in range(5)} == {"(7-0"}
    # and XREAD (after an id) reads a later partition from the entry just before
    assert [read_after(cursor, p) for p in (3, 4)] == ["7-0", "6-18446744073709551615"]
    assert read_after(DeadLetterId("7-2", 0), 1) == "7-1"


def test_merged_order_is_time_then_partition_and_ids_show_their_partition() -> None:
    items = [(9, "2-0", {}), (2, "2-0", {}), (5, "1-5", {}), (0, "10-0", {})]
    assert [(p, i) for p, i, _ in merged(items)] == [(5, "1-5"), (2, "2-0"), (9, "2-0"),
                                                     (0, "10-0")]  # fmt: skip
    one, twelve = Names("n"), Names("n", 12)
    assert (shown_id(one, 0, "1-0"), shown_id(twelve, 4, "1-0")) == ("1-0", "4:1-0")
    assert bus_stream(one, StreamKind.DEAD) == one.dead
    assert bus_stream(twelve, StreamKind.EVENTS) == "{n.*}:events"


def test_a_plain_id_names_every_partition_and_a_missing_partition_none() -> None:
    names = Names("n", 3)
    assert lookups(names, ["1-0", "2:1-0", "7:1-0"]) == [(0, "1-0"), (1, "1-0"), (2, "1-0")]
    assert lookups(Names("n"), ["1-0", "0:1-0"]) == [(0, "1-0")]
