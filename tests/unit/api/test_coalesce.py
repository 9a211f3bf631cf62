"""`Coalescer`: one command per key in flight, and no read answered from a command sent before
it arrived (a read must see every write acknowledged before it was made)."""

from __future__ import annotations

import asyncio
import gc

import pytest

from services.api.coalesce import Coalescer


class Store:
    """A key's value, read by commands that each wait for `release` before they answer."""

    def __init__(self) -> None:
        self.value = 0
        self.sent = 0
        self.release = asyncio.Event()
        self.fail: Exception | None = None

    async def fetch(self) -> int:
        self.sent += 1
        seen = self.value  # the value when the command reached the server
        await self.release.wait()
        if self.fail is not None:
            raise self.fail
        return seen


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_lone_read_sends_its_own_command_and_leaves_nothing_behind() -> None:
    store, reads = Store(), Coalescer[str, int]()
    store.release.set()
    assert await reads.read("k", store.fetch) == 0
    assert store.sent == 1 and len(reads) == 0


async def test_reads_that_arrive_during_a_command_share_the_next_one() -> None:
    # given a read in flight, sent while the value was 0
    store, reads = Store(), Coalescer[str, int]()
    first = asyncio.create_task(reads.read("k", store.fetch))
    await settle()
    # when a write is acknowledged, and then ten reads arrive
    store.value = 1
    later = [asyncio.create_task(reads.read("k", store.fetch)) for _ in range(10)]
    await settle()
    assert store.sent == 1  # they wait: the command in flight predates the write
    store.release.set()
    # then the first read has its 0, the ten share one command sent after they came, and see 1
    assert await first == 0
    assert await asyncio.gather(*later) == [1] * 10
    assert store.sent == 2 and len(reads) == 0


async def test_keys_do_not_share_commands() -> None:
    store, reads = Store(), Coalescer[str, int]()
    tasks = [asyncio.create_task(reads.read(k, store.fetch)) for k in ("a", "b", "c")]
    await settle()
    assert store.sent == 3
    store.release.set()
    await asyncio.gather(*tasks)


async def test_an_error_reaches_every_read_that_shared_the_command_and_the_key_recovers() -> None:
    store, reads = Store(), Coalescer[str, int]()
    first = asyncio.create_task(reads.read("k", store.fetch))
    await settle()
    shared = [asyncio.create_task(reads.read("k", store.fetch)) for _ in range(3)]
    await settle()
    store.fail = ConnectionError("redis went away")
    store.release.set()
    for task in (first, *shared):
        with pytest.raises(ConnectionError):
            await task
    store.fail = None
    assert await reads.read("k", store.fetch) == 0 and len(reads) == 0


async def test_a_reader_that_leaves_does_not_take_the_others_answer() -> None:
    store, reads = Store(), Coalescer[str, int]()
    first = asyncio.create_task(reads.read("k", store.fetch))
    await settle()
    leaving, staying = (asyncio.create_task(reads.read("k", store.fetch)) for _ in range(2))
    await settle()
    leaving.cancel()
    store.release.set()
    assert await first == 0 and await staying == 0
    with pytest.raises(asyncio.CancelledError):
        await leaving
    assert len(reads) == 0


async def test_an_error_nobody_waits_for_is_not_left_unretrieved(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, reads = Store(), Coalescer[str, int]()
    first = asyncio.create_task(reads.read("k", store.fetch))
    await settle()
    gone = asyncio.create_task(reads.read("k", store.fetch))
    await settle()
    gone.cancel()
    store.fail = ConnectionError("down")
    store.release.set()
    with pytest.raises(ConnectionError):
        await first
    await settle()
    del gone
    gc.collect()  # an unretrieved exception is logged when its future is collected
    assert len(reads) == 0
    assert "never retrieved" not in caplog.text
