"""SQLite specifics: one connection driven from a worker thread."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from services.history import StoreUnavailable
from services.history.checkpoint import SAFETY_NET_PAGES
from services.history.sqlite import SqliteHistoryStore
from tests.integration.history.factory import at, brewslm

pytestmark = pytest.mark.integration


async def test_a_cancelled_call_does_not_leave_the_connection_mid_transaction(
    tmp_path: Path,
) -> None:
    # Given a store, and a caller that gives up on a big insert while it runs
    store = SqliteHistoryStore(tmp_path / "h.db")
    await store.open()
    await store.migrate()
    big = [brewslm("exp-1", at(i), event_id=f"b{i}") for i in range(3000)]
    task = asyncio.create_task(store.insert_batch(big))
    await asyncio.sleep(0.005)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    # When the next caller writes at once
    inserted = await store.insert_batch([brewslm("exp-2", at(0), event_id="next")])
    # Then it works (no "transaction within a transaction"), and the cancelled batch was
    # either committed whole or not at all
    assert inserted == 1
    assert await store.count() in (1, 3001)
    await store.close()


async def test_a_file_that_cannot_be_opened_is_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    store = SqliteHistoryStore(blocker / "h.db")
    with pytest.raises(StoreUnavailable):
        await store.open()
    assert await store.ping() is False


def _rows_in_database_file(path: Path) -> int:
    """Rows the database file itself holds, the WAL ignored: what checkpoints copied there."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?immutable=1", uri=True)) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM history").fetchone()[0])
        except sqlite3.OperationalError:  # not even the schema is in the file yet
            return 0


async def test_the_writer_checkpoints_in_the_background_not_in_its_commits(
    tmp_path: Path,
) -> None:
    # Given a store that writes a few small batches: far below SQLite's own automatic
    # checkpoint (1000 WAL pages), so only a background checkpoint copies them to the file
    path = tmp_path / "h.db"
    store = SqliteHistoryStore(path)
    await store.open()
    await store.migrate()
    for batch in range(20):
        rows = [brewslm(f"exp-{batch}", at(i), event_id=f"c{batch}-{i}") for i in range(5)]
        await store.insert_batch(rows)
    # When a moment passes, with no further commit
    deadline = time.monotonic() + 10
    while _rows_in_database_file(path) < 100 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    # Then the database file holds every row, and the writer's own threshold is the safety net
    assert _rows_in_database_file(path) == 100
    assert store._conn is not None
    assert store._conn.execute("PRAGMA wal_autocheckpoint").fetchone() == (SAFETY_NET_PAGES,)
    await store.close()
    # And closing stops the checkpoint thread
    assert not any(t.name == "sqlite-checkpoint" for t in threading.enumerate())


async def test_a_store_that_only_reads_starts_no_checkpoint_thread(tmp_path: Path) -> None:
    # Given a history written by one store, and a second store (the API's) that only reads
    writer = SqliteHistoryStore(tmp_path / "h.db")
    await writer.open()
    await writer.migrate()
    await writer.insert_batch([brewslm("exp-1", at(0), event_id="r1")])
    await writer.close()
    reader = SqliteHistoryStore(tmp_path / "h.db")
    await reader.open()
    # When it reads
    assert await reader.count() == 1
    # Then it runs no checkpoints of its own, and its commits keep SQLite's default
    assert reader._checkpointer is None
    assert reader._conn is not None
    assert reader._conn.execute("PRAGMA wal_autocheckpoint").fetchone() == (1000,)
    await reader.close()
