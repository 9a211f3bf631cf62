"""SQLite specifics: one connection driven from a worker thread."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from services.history import StoreUnavailable
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
