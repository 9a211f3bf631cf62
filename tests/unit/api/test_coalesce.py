"""`CoalescedReads`: at most `in_flight` batches in flight, each read answered from a batch sent
after it arrived (it sees every write acknowledged before it was made), with its own reply.

The client here is a stand-in for redis-py's whose replies wait for `release`, so a test can
hold a batch in flight; the same behaviour against a real Redis (and a Redis Cluster) is in
tests/integration/api/test_coach_versions.py and tests/integration/cluster/test_coach_cluster.py.
"""

from __future__ import annotations

import asyncio
import gc
from typing import Any, cast

import pytest
import redis.asyncio as aredis

from services.api.coalesce import IN_FLIGHT, CoalescedReads


class Server:
    """Values by key, read by round trips that each wait for `release` before they answer."""

    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}
        self.trips: list[list[tuple[Any, ...]]] = []
        self.release = asyncio.Event()
        self.down: Exception | None = None

    def reply(self, command: tuple[Any, ...]) -> Any:
        value = self.values.get(command[1])
        if command[0] == "GETRANGE":
            return (value or b"")[command[2] : command[3] + 1]
        if command[1] == "bad":
            return ValueError("WRONGTYPE")
        return value

    async def trip(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        self.trips.append(commands)
        seen = [self.reply(c) for c in commands]  # what the server had when they reached it
        await self.release.wait()
        if self.down is not None:
            raise self.down
        return seen


class Pipeline:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.commands: list[tuple[Any, ...]] = []

    def execute_command(self, *command: Any) -> None:
        self.commands.append(command)

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        assert raise_on_error is False
        return await self.server.trip(self.commands)


class Client:
    def __init__(self, server: Server) -> None:
        self.server = server

    async def execute_command(self, *command: Any) -> Any:
        (reply,) = await self.server.trip([command])
        if isinstance(reply, Exception):
            raise reply
        return reply

    def pipeline(self, transaction: bool = True) -> Pipeline:
        assert transaction is False
        return Pipeline(self.server)


def reads_of(server: Server, in_flight: int = 1) -> CoalescedReads:
    """Most tests hold one slot: with more, the first reads each take one (see the last test)."""
    return CoalescedReads(cast(aredis.Redis, Client(server)), in_flight)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_lone_read_is_one_command_and_leaves_nothing_behind() -> None:
    server = Server()
    server.values["k"] = b"v0"
    server.release.set()
    reads = reads_of(server)
    assert await reads.get("k") == b"v0"
    assert await reads.getrange("k", 0, 0) == b"v"
    assert server.trips == [[("GET", "k")], [("GETRANGE", "k", 0, 0)]]
    assert reads.batches == 0 and reads.waiting == 0


async def test_reads_that_arrive_during_a_trip_share_the_next_and_see_what_it_sees() -> None:
    # given a read in flight, sent while the value was v0
    server = Server()
    server.values["k"] = b"v0"
    reads = reads_of(server)
    first = asyncio.create_task(reads.get("k"))
    await settle()
    # when a write is acknowledged, and then ten reads of it arrive
    server.values["k"] = b"v1"
    later = [asyncio.create_task(reads.get("k")) for _ in range(10)]
    await settle()
    assert len(server.trips) == 1  # they wait: the trip in flight predates the write
    server.release.set()
    # then the first has v0; the ten shared one command, sent after they came, and have v1
    assert await first == b"v0"
    assert await asyncio.gather(*later) == [b"v1"] * 10
    assert server.trips == [[("GET", "k")], [("GET", "k")]]
    assert reads.waiting == 0


async def test_reads_of_many_keys_share_one_pipeline_each_with_its_own_reply() -> None:
    server = Server()
    server.values.update({f"k{i}": f"v{i}".encode() for i in range(20)})
    reads = reads_of(server)
    first = asyncio.create_task(reads.get("k0"))
    await settle()
    gets = [asyncio.create_task(reads.get(f"k{i}")) for i in range(20)]
    heads = [asyncio.create_task(reads.getrange(f"k{i}", 0, 0)) for i in range(3)]
    await settle()
    server.release.set()
    assert await first == b"v0"
    assert await asyncio.gather(*gets) == [f"v{i}".encode() for i in range(20)]
    assert await asyncio.gather(*heads) == [b"v"] * 3
    assert len(server.trips) == 2 and len(server.trips[1]) == 23 and reads.batches == 1


async def test_a_command_error_reaches_only_its_own_reads() -> None:
    server = Server()
    server.values["k"] = b"v"
    reads = reads_of(server)
    first = asyncio.create_task(reads.get("k"))
    await settle()
    bad, good = asyncio.create_task(reads.get("bad")), asyncio.create_task(reads.get("k"))
    await settle()
    server.release.set()
    await first
    with pytest.raises(ValueError, match="WRONGTYPE"):
        await bad
    assert await good == b"v"


async def test_a_lost_connection_reaches_every_read_of_the_batch_and_reads_recover() -> None:
    server = Server()
    reads = reads_of(server)
    first = asyncio.create_task(reads.get("k"))
    await settle()
    shared = [asyncio.create_task(reads.get(k)) for k in ("k", "j", "k")]
    await settle()
    server.down = ConnectionError("redis went away")
    server.release.set()
    for task in (first, *shared):
        with pytest.raises(ConnectionError):
            await task
    server.down = None
    server.values["k"] = b"back"
    assert await reads.get("k") == b"back" and reads.waiting == 0


async def test_a_reader_that_leaves_does_not_take_the_others_answer() -> None:
    server = Server()
    server.values["k"] = b"v"
    reads = reads_of(server)
    first = asyncio.create_task(reads.get("k"))
    await settle()
    leaving, staying = (asyncio.create_task(reads.get("k")) for _ in range(2))
    await settle()
    leaving.cancel()
    server.release.set()
    assert await first == b"v" and await staying == b"v"
    with pytest.raises(asyncio.CancelledError):
        await leaving


async def test_an_error_nobody_waits_for_is_not_left_unretrieved(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = Server()
    reads = reads_of(server)
    first = asyncio.create_task(reads.get("k"))
    await settle()
    gone = asyncio.create_task(reads.get("j"))
    await settle()
    gone.cancel()
    server.down = ConnectionError("down")
    server.release.set()
    with pytest.raises(ConnectionError):
        await first
    await settle()
    del gone
    gc.collect()  # an unretrieved exception is logged when its future is collected
    assert reads.waiting == 0
    assert "never retrieved" not in caplog.text


async def test_with_two_slots_a_second_read_goes_at_once_and_the_third_waits() -> None:
    # given the API's two slots, the first taken
    assert IN_FLIGHT == 2
    server = Server()
    server.values.update(a=b"1", b=b"2", c=b"3")
    reads = reads_of(server, IN_FLIGHT)
    first = asyncio.create_task(reads.get("a"))
    await settle()
    # when two more reads come while it is in flight
    second = asyncio.create_task(reads.get("b"))
    await settle()
    third = asyncio.create_task(reads.get("c"))
    await settle()
    # then the second was sent at once, the third waits for a free slot
    assert server.trips == [[("GET", "a")], [("GET", "b")]] and reads.waiting == 1
    server.release.set()
    assert [await first, await second, await third] == [b"1", b"2", b"3"]
    assert server.trips[2:] == [[("GET", "c")]] and reads.waiting == 0
    # and once all returned, both slots are free again: two reads go at once
    server.release.clear()
    more = [asyncio.create_task(reads.get(k)) for k in ("a", "b")]
    await settle()
    assert len(server.trips) == 5 and reads.waiting == 0
    server.release.set()
    await asyncio.gather(*more)
