"""Dead-letter retention on the real Redis and both history backends: entries past the policy
leave the stream only once they are in the archive, and a crash between archive and trim
duplicates nothing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.asyncio as aredis

from services.history import HistoryStore, StoreUnavailable, archive_postgres, archive_sqlite
from services.ops.status import retention_status
from services.persister.app import run_persister
from services.persister.retention import Policy, Retention, Sweep, sweep_stream
from shared.archive import FIRST_ID, LAST_ID, ArchiveRow, archive_row
from shared.settings import Settings
from shared.wire import Fields, as_text, entry_id_key
from tests.unit.ops.builders import dead_fields

DAY = timedelta(days=1)


async def add_dead(client: aredis.Redis, stream: str, count: int, at: datetime | None) -> list[str]:
    """Append `count` dead letters (back-dated to `at`); their ids."""
    ids = []
    for n in range(count):
        entry_id = f"{int(at.timestamp() * 1000)}-*" if at is not None else "*"
        fields = dead_fields([f"invalid_reason_code:c{n}"], f'{{"n": {n}}}'.encode())
        ids.append(as_text(await client.xadd(stream, fields, id=entry_id)))  # type: ignore[arg-type]
    return ids


async def stream_ids(client: aredis.Redis, stream: str) -> list[str]:
    return [as_text(i) for i, _ in await client.xrange(stream)]


class DownArchive:
    """The store, with its archive writes failing as if the database were down."""

    def __init__(self, store: HistoryStore) -> None:
        self.store = store

    async def archive_dead_letters(self, rows: Sequence[ArchiveRow]) -> int:
        raise StoreUnavailable("database down (test)")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


async def test_old_entries_leave_the_stream_only_once_archived(
    store: HistoryStore, async_client: aredis.Redis, settings: Settings
) -> None:
    stream = settings.names.dead
    old = await add_dead(async_client, stream, 5, datetime.now(UTC) - 10 * DAY)
    fresh = await add_dead(async_client, stream, 3, None)
    on_stream: dict[str, Fields] = {as_text(i): f for i, f in await async_client.xrange(stream)}
    policy = Policy(max_age_s=7 * 86400, max_entries=0)

    with pytest.raises(StoreUnavailable):
        await sweep_stream(async_client, DownArchive(store), stream, policy, Sweep())  # type: ignore[arg-type]
    assert await stream_ids(async_client, stream) == old + fresh  # nothing trimmed

    done = Sweep()
    await sweep_stream(async_client, store, stream, policy, done)
    assert (done.archived, done.expired) == (5, 5)
    assert await stream_ids(async_client, stream) == fresh
    archived = await store.archived_dead_letters([(stream, i) for i in old + fresh])
    assert [a.entry_id for a in archived] == old
    for letter in archived:  # whole, byte for byte (the original is always a field back)
        assert letter.fields == on_stream[letter.entry_id] | {
            b"original": letter.fields[b"original"]
        }
        assert letter.fields[b"original"] == on_stream[letter.entry_id][b"original"]


async def test_the_oldest_beyond_the_length_limit_are_archived_then_trimmed(
    store: HistoryStore, async_client: aredis.Redis, settings: Settings
) -> None:
    stream = settings.names.dead
    ids = await add_dead(async_client, stream, 25, None)
    done = Sweep()
    await sweep_stream(async_client, store, stream, Policy(0, 4), done, chunk=7)  # several chunks
    assert (done.archived, done.expired) == (21, 21)
    assert await stream_ids(async_client, stream) == ids[-4:]
    assert (await store.archive_size()).entries == 21


async def test_a_crash_between_archive_and_trim_duplicates_nothing(
    store: HistoryStore, async_client: aredis.Redis, settings: Settings
) -> None:
    stream = settings.names.dead
    ids = await add_dead(async_client, stream, 6, None)
    # The sweep archived the four oldest, then died before its XTRIM
    entries = [(as_text(i), f) for i, f in await async_client.xrange(stream, count=4)]
    assert await store.archive_dead_letters([archive_row(stream, i, f) for i, f in entries]) == 4
    done = Sweep()
    await sweep_stream(async_client, store, stream, Policy(0, 2), done)
    assert (done.archived, done.expired) == (0, 4)  # archived again: nothing new stored
    assert await stream_ids(async_client, stream) == ids[-2:]
    assert (await store.archive_size()).entries == 4


async def test_a_sweep_reports_its_counts_and_the_archive_size(
    store: HistoryStore, async_client: aredis.Redis, settings: Settings
) -> None:
    await add_dead(async_client, settings.names.dead, 5, None)
    policy = settings.model_copy(update={"dead_letter_max_entries": 2})
    await Retention(async_client, store, policy).once()
    status = await retention_status(async_client, settings.names, datetime.now(UTC))
    assert (status.archived, status.expired, status.archive_entries) == (3, 3, 3)
    assert status.error is None and status.last_sweep_age_s is not None
    # The database down: reported, nothing trimmed, the counts stay
    await add_dead(async_client, settings.names.dead, 3, None)
    await Retention(async_client, DownArchive(store), policy).once()  # type: ignore[arg-type]
    status = await retention_status(async_client, settings.names, datetime.now(UTC))
    assert status.error is not None and "database down" in status.error
    assert (status.archived, status.expired) == (3, 3)
    assert await async_client.xlen(settings.names.dead) == 5


async def test_the_persister_runs_retention_on_its_own_store(
    async_client: aredis.Redis, settings: Settings, backend_url: str
) -> None:
    tuned = settings.model_copy(
        update={
            "database_url": backend_url,
            "dead_letter_max_entries": 3,
            "dead_letter_sweep_interval_s": 0.05,
        }
    )
    ids = await add_dead(async_client, tuned.names.dead, 10, None)
    async with persister_running(tuned):
        await until(lambda: xlen_at_most(async_client, tuned, 3), "retention did not trim")
    assert await stream_ids(async_client, tuned.names.dead) == ids[-3:]
    status = await retention_status(async_client, tuned.names, datetime.now(UTC))
    assert (status.archived, status.expired) == (7, 7)


async def test_each_partition_is_swept_and_its_archived_letters_found_by_qualified_id(
    store: HistoryStore, async_client: aredis.Redis, settings: Settings
) -> None:
    from services.ops.deadletters import get_dead_letter
    from services.persister.retention import sweep

    names = settings.model_copy(update={"partitions": 2}).names
    first = await add_dead(async_client, names.partition(0).dead, 3, None)
    second = await add_dead(async_client, names.partition(1).dead, 4, None)
    done = Sweep()
    await sweep(async_client, store, names, Policy(0, 1), done)
    assert (done.archived, done.expired) == (5, 5)
    assert await stream_ids(async_client, names.partition(1).dead) == second[-1:]
    found = await get_dead_letter(async_client, names, f"1:{second[0]}", store)
    assert found is not None and found.id == f"1:{second[0]}" and found.archived_at is not None
    plain = await get_dead_letter(async_client, names, first[0], store)  # any partition
    assert plain is not None and plain.id == f"0:{first[0]}"


async def test_a_crowded_stream_is_swept_at_once_not_at_the_next_interval(
    async_client: aredis.Redis, settings: Settings, backend_url: str
) -> None:
    # given a persister whose next sweep is an hour away, and a limit of 100 dead letters
    tuned = settings.model_copy(
        update={
            "database_url": backend_url,
            "dead_letter_max_entries": 100,
            "dead_letter_sweep_interval_s": 3600.0,
        }
    )
    async with persister_running(tuned):
        # when a burst fills the stream past half its room (150 > 95)
        ids = await add_dead(async_client, tuned.names.dead, 150, None)
        # then it is swept now, oldest first: down to the limit less its room (90, or as low
        # as 50 when a look in the burst measured its rate), up to 95 when a sweep ran in it
        await until(lambda: swept_and_reported(async_client, tuned, 95, 150), "it waited")
    kept = await stream_ids(async_client, tuned.names.dead)
    assert 50 <= len(kept) <= 95 and kept == ids[-len(kept) :]


@contextlib.asynccontextmanager
async def persister_running(settings: Settings) -> AsyncIterator[None]:
    """The persister (and its retention job) running in this loop until the block ends."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_persister(settings, stop))
    try:
        yield
    finally:
        stop.set()
        await task


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 20.0) -> None:
    """Poll `check` until it holds, failing with `what` after `timeout`."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.05)


async def xlen_at_most(client: aredis.Redis, settings: Settings, most: int) -> bool:
    return int(await client.xlen(settings.names.dead)) <= most


async def swept_and_reported(
    client: aredis.Redis, settings: Settings, most: int, added: int
) -> bool:
    """The stream holds at most `most` entries and the retention hash counts the rest."""
    length = int(await client.xlen(settings.names.dead))
    status = await retention_status(client, settings.names, datetime.now(UTC))
    return length <= most and status.archived == status.expired == added - length


async def test_the_archive_is_read_a_page_at_a_time_in_id_order_within_bounds(
    store: HistoryStore, async_client: aredis.Redis, settings: Settings
) -> None:
    # given 25 dead letters archived by a sweep (ids within one ms compare by their seq)
    stream = settings.names.dead
    ids = await add_dead(async_client, stream, 25, None)
    await sweep_stream(async_client, store, stream, Policy(0, 1), Sweep(), chunk=7)
    archived_ids = ids[:-1]
    # when it is read in pages of 7 from the start
    pages, position = [], FIRST_ID
    while page := await store.archived_after(stream, position, LAST_ID, 7):
        pages.append([letter.entry_id for letter in page])
        position = entry_id_key(page[-1].entry_id)
    # then every archived letter comes once, oldest first, whole
    assert [len(p) for p in pages] == [7, 7, 7, 3]
    assert [i for p in pages for i in p] == archived_ids
    # and the bounds hold: above the 5th, at most the 9th; another stream has none
    middle = await store.archived_after(
        stream, entry_id_key(archived_ids[4]), entry_id_key(archived_ids[8]), 100
    )
    assert [letter.entry_id for letter in middle] == archived_ids[5:9]
    assert not await store.archived_after(stream + "-other", FIRST_ID, LAST_ID, 100)
    # and a letter a redrive claimed says so
    await store.claim_redrives([(stream, archived_ids[0])])
    first = await store.archived_after(stream, FIRST_ID, LAST_ID, 1)
    assert first[0].redriven and first[0].fields[b"errors"]


async def test_a_prune_of_the_archive_removes_only_what_is_older_a_chunk_at_a_time(
    store: HistoryStore,
    async_client: aredis.Redis,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given five letters archived from ten days ago, one of them redriven, and three fresh
    monkeypatch.setattr(archive_sqlite, "PRUNE_CHUNK", 2)
    monkeypatch.setattr(archive_postgres, "PRUNE_CHUNK", 2)
    stream = settings.names.dead
    old = await add_dead(async_client, stream, 5, datetime.now(UTC) - 10 * DAY)
    fresh = await add_dead(async_client, stream, 3, None)
    rows = [archive_row(stream, as_text(i), f) for i, f in await async_client.xrange(stream)]
    assert await store.archive_dead_letters(rows) == 8
    await store.claim_redrives([(stream, old[0])])
    # when the archive is pruned of what is older than a week (chunks of two)
    result = await store.prune_archive(7 * DAY)
    # then the five old ones and their claim are gone, the fresh ones stay, whole
    assert result.letters_deleted == 5
    size = await store.archive_size()
    assert (size.entries, size.redriven) == (3, 0)
    left = await store.archived_after(stream, FIRST_ID, LAST_ID, 100)
    assert [letter.entry_id for letter in left] == fresh
    assert (await store.prune_archive(7 * DAY)).letters_deleted == 0
