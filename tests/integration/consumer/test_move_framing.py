"""Stories: the atomic move carries any fields unchanged (one framed argument per entry).

`BatchContext.move` sends each entry's fields to the Lua script as one length-prefixed string
(redis-py's asyncio client packs arguments in Python, so fewer arguments is faster); the script
splits it back. Whatever the fields hold, the target entry must have exactly them, in order,
and a move retried after a lost reply must move nothing twice.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis
import redis.asyncio as aredis

from shared.consumer import BatchContext, Entry, Move, StreamWorker, frame_fields
from shared.settings import Settings

pytestmark = pytest.mark.integration

ODD_FIELDS: list[dict[bytes, bytes]] = [
    {b"__data__": b'{"a":1}'},
    {b"empty": b"", b"": b"empty name", b"nul": b"\x00\x00", b"high": bytes(range(256))},
    {f"f{i}".encode(): str(i).encode() * i for i in range(40)},  # many fields, in order
    {b"big": b"x" * 200_000, b"after": b"still here"},
    {b"\xff\xfe": b"\r\n*3\r\n$4\r\nPING", b"utf8": "é ✓ 😀".encode()},
    {b"\xff": b""},  # one field (framed through the cached name), not __data__
]


def pending_entries(client: redis.Redis, stream: str, group: str, count: int) -> list[Entry]:
    """Add `count` entries, create the group and read them: they are pending, as in a batch."""
    for i in range(count):
        client.xadd(stream, {b"n": str(i).encode()})
    client.xgroup_create(stream, group, id="0")
    reply: Any = client.xreadgroup(group, "c1", {stream: ">"}, count=count)
    return [Entry(i.decode(), f, 1) for i, f in reply[0][1]]


async def test_moved_entries_keep_every_field_byte_for_byte(
    sync_client: redis.Redis, async_client: aredis.Redis, settings: Settings
) -> None:
    # given pending entries of a group, and a second target stream
    source, valid, dead = settings.names.events, settings.names.valid, settings.names.dead
    entries = pending_entries(sync_client, source, "g", len(ODD_FIELDS))
    worker = StreamWorker(
        async_client, settings, stream=source, group="g", stage="t", handler=_never
    )
    ctx: BatchContext = worker.ctx
    pairs = zip(entries, ODD_FIELDS, strict=True)
    moves = [Move(e, valid if n % 2 else dead, f) for n, (e, f) in enumerate(pairs)]
    # when they are moved in one call
    assert await ctx.move(moves) == len(moves)
    # then each target entry holds exactly the fields it was given, in order
    dead_rows: Any = sync_client.xrange(dead)
    valid_rows: Any = sync_client.xrange(valid)
    rows = dead_rows + valid_rows
    got = [list(f.items()) for _, f in rows]
    want = [list(f.items()) for f in ODD_FIELDS[0::2] + ODD_FIELDS[1::2]]
    assert got == want
    # and every source entry is acknowledged
    assert sync_client.xpending(source, "g")["pending"] == 0
    # and the same call retried (a lost reply) moves nothing twice
    assert await ctx.move(moves) == 0
    assert sync_client.xlen(valid) + sync_client.xlen(dead) == len(moves)


def test_framing_prefixes_every_name_and_value_with_its_length() -> None:
    framed = frame_fields({b"ab": b"", b"": b"xyz"})
    assert framed == b"\x00\x00\x00\x02ab" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00" + (
        b"\x00\x00\x00\x03xyz"
    )
    # One field (a valid envelope) is framed the same way
    assert frame_fields({b"__data__": b"xy"}) == b"\x00\x00\x00\x08__data__\x00\x00\x00\x02xy"
    assert frame_fields({b"": b""}) == b"\x00" * 8


async def _never(batch: list[Entry], ctx: BatchContext) -> None:
    raise AssertionError("the handler is not used here")
