"""The dead-letter archive on both backends: idempotent on (stream, entry id), whole entries
back in the order asked, each redrive claimed once."""

from __future__ import annotations

from services.history import HistoryStore
from shared.archive import ArchiveRow, archive_row, fields_of
from tests.unit.ops.builders import dead_fields

STREAM = "{ns}:dead"


def rows(*entry_ids: str, body: bytes = b'{"run_id": "r"}') -> list[ArchiveRow]:
    return [archive_row(STREAM, i, dead_fields(["malformed_json"], body)) for i in entry_ids]


async def test_archiving_twice_stores_each_entry_once(store: HistoryStore) -> None:
    assert await store.archive_dead_letters(rows("1000-0", "1000-1")) == 2
    # A crash between archive and trim: the next sweep archives the same entries again
    assert await store.archive_dead_letters(rows("1000-0", "1000-1", "2000-0")) == 1
    size = await store.archive_size()
    assert (size.entries, size.oldest_ms, size.redriven) == (3, 1000, 0)
    assert size.bytes == sum(r.size for r in rows("1000-0", "1000-1", "2000-0"))


async def test_entries_come_back_whole_in_the_order_asked(store: HistoryStore) -> None:
    body = b"\x00\xff not utf-8 \x00"
    written = rows("1000-0", "2000-0", body=body)
    await store.archive_dead_letters(written)
    keys = [(STREAM, "2000-0"), ("{other}:dead", "1000-0"), (STREAM, "1000-0"), (STREAM, "9-9")]
    found = await store.archived_dead_letters(keys)
    assert [(f.stream, f.entry_id) for f in found] == [(STREAM, "2000-0"), (STREAM, "1000-0")]
    assert found[0].fields == fields_of(written[1].original, written[1].other)
    assert found[0].fields[b"original"] == body
    assert found[0].archived_at is not None
    assert not found[0].redriven


async def test_a_redrive_is_claimed_once_and_released_when_it_failed(store: HistoryStore) -> None:
    await store.archive_dead_letters(rows("1000-0", "2000-0"))
    first = await store.claim_redrives([(STREAM, "1000-0"), (STREAM, "2000-0")])
    assert first == {(STREAM, "1000-0"), (STREAM, "2000-0")}
    assert await store.claim_redrives([(STREAM, "1000-0")]) == set()
    await store.release_redrives([(STREAM, "2000-0")])
    assert await store.claim_redrives([(STREAM, "2000-0"), (STREAM, "1000-0")]) == {
        (STREAM, "2000-0")
    }
    found = await store.archived_dead_letters([(STREAM, "1000-0")])
    assert found[0].redriven
    assert (await store.archive_size()).redriven == 2


async def test_an_empty_archive_has_no_oldest(store: HistoryStore) -> None:
    size = await store.archive_size()
    assert (size.entries, size.bytes, size.oldest_ms, size.redriven) == (0, 0, None, 0)
