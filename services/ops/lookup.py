"""Point lookups of one entry id on the bus's streams: where is ``1700000000000-0``?

An id as a user pastes it: plain (``<ms>-<seq>``: every partition) or qualified by its
partition (``3:<ms>-<seq>``, as dead-letter ids are shown). Each stream asked is one
``XRANGE <id> <id> COUNT 1``, all in one pipelined round trip (a cluster client sends each to
the node owning that partition's slot): a lookup never scans a stream, whatever its length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aredis

from services.ops.stream_ids import parse_dead_letter_id
from shared.names import Names, StreamKind
from shared.wire import Fields, as_text


@dataclass(frozen=True, slots=True)
class Found:
    """One entry found: on which role's stream of which partition, its id and its fields."""

    kind: StreamKind
    partition: int
    entry_id: str
    fields: Fields


async def find_entry(
    client: aredis.Redis,
    names: Names,
    value: str,
    kinds: Sequence[StreamKind] = tuple(StreamKind),
) -> list[Found]:
    """Every entry with the id `value` on the streams of `kinds`, in each partition the id can
    name (by kind, then partition). `InvalidStreamId` for a value that is no id (an id Redis
    cannot hold included: never a Redis error)."""
    parsed = parse_dead_letter_id(value, "q")
    where = [(kind, index) for kind in kinds for index in parsed.partitions(names.partitions)]
    if not where:  # a partition the bus does not have
        return []
    async with client.pipeline(transaction=False) as pipe:
        for kind, index in where:
            pipe.xrange(names.partition(index).stream(kind), parsed.entry, parsed.entry, count=1)
        # A key of another type (WRONGTYPE) holds no entry: it is not this lookup's to fail.
        replies = await pipe.execute(raise_on_error=False)
    return [
        Found(kind, index, as_text(entry_id), fields or {})
        for (kind, index), reply in zip(where, replies, strict=True)
        if not isinstance(reply, Exception)
        for entry_id, fields in reply
    ]
