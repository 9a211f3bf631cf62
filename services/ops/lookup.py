"""Point lookups of one entry id on the bus's streams: where is ``1700000000000-0``?

An id as a user pastes it: plain (``<ms>-<seq>``: every partition) or qualified by its
partition (``3:<ms>-<seq>``, as dead-letter ids are shown). Each stream asked is one
``XRANGE <id> <id> COUNT 1``, all in one pipelined round trip (a cluster client sends each to
the node owning that partition's slot): a lookup never scans a stream, whatever its length.

`find_dead_letters_of` is the one bounded scan: the dead letters of a rejected entry, by the
entry's id on the stream it was read from (``source_id``), once that entry is gone (trimmed).
No index maps a source id to its dead letter, but time does: a dead letter is written after
its entry was read, on the same partition (one Redis node), so its id is at or after the
source id's millisecond. The scan reads each partition's dead-letter stream from there,
`SOURCE_PAGE` entries a page, `SOURCE_PAGES` pages at most: it finds a dead letter among the
first ``SOURCE_PAGE * SOURCE_PAGES`` written (in that partition) from its entry's millisecond
on, whatever the stream's length, and misses one written later than that (a long backlog, a
burst of rejections, or a producer that set its entry ids ahead of the clock).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import redis.asyncio as aredis

from services.ops.stream_ids import after, parse_dead_letter_id
from shared.names import Names, StreamKind
from shared.wire import DEAD_LETTERS, Fields, as_text

#: Dead letters read per XRANGE page of `find_dead_letters_of`, and its pages per partition.
SOURCE_PAGE: Final = 250
SOURCE_PAGES: Final = 4


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


async def find_dead_letters_of(client: aredis.Redis, names: Names, value: str) -> list[Found]:
    """The dead letters whose source entry id (``source_id``) is `value`, among the first
    ``SOURCE_PAGE * SOURCE_PAGES`` of each partition `value` can name written from its
    millisecond on (see the module), by partition then id. `InvalidStreamId` for a value that
    is no id."""
    parsed = parse_dead_letter_id(value, "q")
    wanted = parsed.entry.encode()
    start = parsed.entry.split("-", 1)[0] + "-0"
    cursors: dict[int, str] = dict.fromkeys(parsed.partitions(names.partitions), start)
    found: list[Found] = []
    for _ in range(SOURCE_PAGES):
        if not cursors:
            break
        pages = await _pages(client, names, cursors)
        cursors = {}
        for index, page in pages.items():
            found += [
                Found(StreamKind.DEAD, index, as_text(entry_id), fields)
                for entry_id, fields in page
                if DEAD_LETTERS.raw(fields, "source_id") == wanted
            ]
            more = after(as_text(page[-1][0])) if len(page) == SOURCE_PAGE else None
            if more is not None:
                cursors[index] = more
    return sorted(found, key=lambda f: f.partition)


async def _pages(
    client: aredis.Redis, names: Names, cursors: dict[int, str]
) -> dict[int, list[Any]]:
    """One page of each partition's dead-letter stream from its cursor, in one round trip."""
    async with client.pipeline(transaction=False) as pipe:
        for index, cursor in cursors.items():
            pipe.xrange(names.partition(index).dead, cursor, "+", count=SOURCE_PAGE)
        # A key of another type (WRONGTYPE) holds no dead letter: not this lookup's to fail.
        replies = await pipe.execute(raise_on_error=False)
    return {
        index: reply
        for index, reply in zip(cursors, replies, strict=True)
        if not isinstance(reply, Exception) and reply
    }
