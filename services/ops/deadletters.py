"""Redis I/O on the dead-letter streams: list, follow, show, count, redrive, purge; the audit.

Reads go through each partition's stream in chunks (XRANGE/XREVRANGE with a count, continuing
after the last id), so a stream of 100k dead letters never arrives in one reply; lists of
several partitions merge in time order (`services.ops.partitions`). Every command names one
key, so a cluster client routes each to its partition's node. A redrive moves each dead letter
with one Lua call that deletes it and appends it to the target only when the delete removed
it: a redrive run twice, retried after a lost reply, or run by two operators at once moves
nothing twice. A dead letter goes back to its own partition's incoming stream, which shares
the dead-letter stream's hash tag: that call is one slot on a Redis Cluster too.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
import redis.asyncio as aredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.ops import archived, stream_ids
from services.ops.errors import PurgeFilterRequired
from services.ops.filters import Matcher, matcher, matcher_of
from services.ops.logic import (
    StatsTally,
    TokenBucket,
    age_s,
    hash_tag,
    line_of,
    now_utc,
    parse_errors,
    record_of,
    redrive_fields,
    window,
)
from services.ops.models import (
    AuditRecord,
    Count,
    DeadLetterFilter,
    DeadLetterLine,
    DeadLetterPage,
    DeadLetterRecord,
    DeadLetterStats,
    PartitionDeadLetters,
    PurgeResult,
    RedriveResult,
    Selection,
)
from services.ops.partitions import Located, bus_stream, by_partition, lookups, merged, shown_id
from services.ops.stream_ids import DeadLetterId
from shared.archive import ArchiveError, DeadLetterArchive
from shared.error_codes import code_family
from shared.names import Names, StreamKind
from shared.retry import Backoff
from shared.wire import DEAD_LETTERS, Fields, as_text, entry_id_key

#: Entries per XRANGE round trip when scanning the whole stream.
CHUNK = 2000
#: Dead letters per redrive Lua call (fewer when the rate limit or the payload size says so).
MOVE_BATCH = 200
#: Payload bytes per redrive Lua call: keeps one call from blocking Redis on huge originals.
MOVE_BYTES = 4 * 1024 * 1024
_OUTAGES = (RedisConnectionError, RedisTimeoutError, OSError)
#: Redis unreachable while following: the next read waits up to 0.2 s, doubling, at most 5 s.
_OUTAGE_BACKOFF = Backoff(base_s=0.2, cap_s=5.0)

# KEYS: dead stream, target stream. ARGV per move: dead-letter id, field count n, n pairs.
# Deleting first and appending only when XDEL removed the entry makes every move at most once.
_REDRIVE_LUA = """
local out = {}
local i = 1
while i <= #ARGV do
  local id = ARGV[i]
  local n = tonumber(ARGV[i + 1])
  if redis.call('XDEL', KEYS[1], id) == 1 then
    local args = {KEYS[2], '*'}
    for j = 1, n * 2 do args[#args + 1] = ARGV[i + 1 + j] end
    out[#out + 1] = id
    out[#out + 1] = redis.call('XADD', unpack(args))
  end
  i = i + 2 + n * 2
end
return out
"""

Entries = list[tuple[str, Fields]]
Progress = Callable[[int], None]


def _entries(reply: Any) -> Entries:
    return [(as_text(entry_id), fields or {}) for entry_id, fields in reply]


async def scan(
    client: aredis.Redis,
    stream: str,
    low: str = "-",
    high: str = "+",
    *,
    reverse: bool = False,
    chunk: int = CHUNK,
    first_chunk: int | None = None,
) -> AsyncIterator[Entries]:
    """Entries of `stream` between `low` and `high`, chunk by chunk (newest first if reverse).

    The first chunk may be smaller (`first_chunk`), then chunks double up to `chunk`: a tail of
    20 does not fetch 5000 payloads.
    """
    size = min(first_chunk or chunk, chunk)
    while True:
        if reverse:
            reply = await client.xrevrange(stream, high, low, count=size)
        else:
            reply = await client.xrange(stream, low, high, count=size)
        entries = _entries(reply)
        if entries:
            yield entries
        if len(entries) < size:
            return
        if reverse:
            high = "(" + entries[-1][0]
        else:
            low = "(" + entries[-1][0]
        size = min(size * 2, chunk)


# --- reading ------------------------------------------------------------------------------


def _record(names: Names, item: Located) -> DeadLetterRecord:
    partition, entry_id, fields = item
    record = record_of(entry_id, fields)
    if names.partitions == 1:
        return record
    return record.model_copy(update={"id": shown_id(names, partition, entry_id)})


def _line(names: Names, item: Located) -> DeadLetterLine:
    partition, entry_id, fields = item
    line = line_of(entry_id, fields)
    if names.partitions == 1:
        return line
    return line.model_copy(update={"id": shown_id(names, partition, entry_id)})


def _newest_shown(names: Names, seen: Sequence[tuple[int, str]]) -> str | None:
    """The newest of (partition, entry id) pairs in merged order, as shown; None if none."""
    if not seen:
        return None
    partition, entry_id, _ = merged(((p, i, {}) for p, i in seen), newest_first=True)[0]
    return shown_id(names, partition, entry_id)


def _cursor(value: str | None, field: str) -> DeadLetterId | None:
    return None if value is None else stream_ids.parse_dead_letter_id(value, field)


@dataclass(frozen=True, slots=True)
class _Scope:
    """What a listing reads: the entries `match` passes between the XRANGE bounds `low` and
    `high` (the age window)."""

    match: Matcher
    low: str = "-"
    high: str = "+"


async def list_dead_letters(
    client: aredis.Redis,
    names: Names,
    *,
    reasons: Sequence[str] = (),
    stages: Sequence[str] = (),
    sources: Sequence[str] = (),
    since: timedelta | None = None,
    before: timedelta | None = None,
    limit: int = 20,
    after_id: str | None = None,
    before_id: str | None = None,
    now: datetime | None = None,
) -> DeadLetterPage:
    """A page of dead letters matching the filters, oldest first.

    The filters are a redrive's (`services.ops.filters`, checked there): reasons (codes or
    families), rejecting `stages`, `sources` (stream roles: every partition's stream of each),
    younger than `since`, older than `before`.

    Without `after_id`: the newest `limit` matches (older than `before_id` when given), what
    `tail` prints. With `after_id`: the oldest `limit` matches after it (paging forward).
    `next_after` is the newest id looked at: follow from there and nothing is missed. Over
    several partitions the order is merged time order, ties broken by partition index.
    """
    # Both ids are checked even though `after_id` wins: an ignored bad id is still refused.
    after_c, before_c = _cursor(after_id, "after_id"), _cursor(before_id, "before_id")
    match = matcher(names, reasons=reasons, stages=stages, sources=sources)
    bounds = window(now or now_utc(), since, before)
    if bounds is None:  # older than the epoch: nothing can match
        newest = after_id or before_id or _newest_shown(names, await _last_ids(client, names))
        return DeadLetterPage(items=[], next_after=newest, next_before=None)
    scope = _Scope(match, *bounds)
    if after_c is not None and after_id is not None:
        return await _page_forward(client, names, scope, (after_c, after_id), limit)
    return await _page_backward(client, names, scope, before_c, before_id, limit)


async def _backward_one(
    client: aredis.Redis, stream: str, match: Matcher, bounds: tuple[str, str], limit: int
) -> tuple[Entries, str | None]:
    """The newest `limit` matches of one stream between `bounds`, and the newest id looked at."""
    items: Entries = []
    newest: str | None = None
    async for entries in scan(client, stream, *bounds, reverse=True, first_chunk=limit):
        newest = newest or entries[0][0]
        items += [(i, f) for i, f in entries if match(f)]
        if len(items) >= limit:
            return items[:limit], newest
    return items, newest


def _earlier(high: str, end: str) -> str:
    """The earlier of the window's high end (``+`` or exclusive) and a cursor's end (``+``,
    exclusive or inclusive): on equal ids the exclusive one."""
    if high == "+":
        return end
    if end == "+" or entry_id_key(high[1:]) <= entry_id_key(end.removeprefix("(")):
        return high
    return end


async def _page_backward(
    client: aredis.Redis,
    names: Names,
    scope: _Scope,
    cursor: DeadLetterId | None,
    before_id: str | None,
    limit: int,
) -> DeadLetterPage:
    found: list[Located] = []
    seen: list[tuple[int, str]] = []
    for partition in names.all_partitions:
        end = "+" if cursor is None else stream_ids.before_in(cursor, partition.index)
        if end is None:  # nothing can come before 0-0
            continue
        bounds = (scope.low, _earlier(scope.high, end))
        items, newest = await _backward_one(client, partition.dead, scope.match, bounds, limit)
        found += [(partition.index, i, f) for i, f in items]
        seen += [(partition.index, newest)] if newest else []
    if not seen and cursor is None:
        seen = await _last_ids(client, names)
    records = [_record(names, item) for item in merged(found, newest_first=True)[:limit]]
    records.reverse()
    # A full page may have older matches behind it; the next page starts before its oldest.
    more = limit > 0 and len(records) == limit
    return DeadLetterPage(
        items=records,
        next_after=_newest_shown(names, seen) or before_id,
        next_before=records[0].id if more else None,
    )


async def _forward_one(
    client: aredis.Redis, stream: str, match: Matcher, bounds: tuple[str, str], limit: int
) -> tuple[Entries, str | None]:
    """The oldest `limit` matches of one stream between `bounds`, and the last id looked at."""
    items: Entries = []
    cursor: str | None = None
    async for entries in scan(client, stream, *bounds, first_chunk=limit):
        for entry_id, fields in entries:
            if match(fields):
                items.append((entry_id, fields))
            cursor = entry_id
            if len(items) == limit:
                return items, cursor
    return items, cursor


def _later(low: str, start: str) -> str:
    """The later of the window's low end and the cursor's start (either may be exclusive)."""
    if low != "-" and entry_id_key(low) > entry_id_key(start.removeprefix("(")):
        return low
    return start


async def _page_forward(
    client: aredis.Redis,
    names: Names,
    scope: _Scope,
    after: tuple[DeadLetterId, str],
    limit: int,
) -> DeadLetterPage:
    cursor, after_id = after
    found: list[Located] = []
    seen: list[tuple[int, str]] = []
    for partition in names.all_partitions:
        start = stream_ids.after_in(cursor, partition.index)
        if start is None:  # nothing can come after the last possible id
            continue
        bounds = (_later(scope.low, start), scope.high)
        items, last = await _forward_one(client, partition.dead, scope.match, bounds, limit)
        found += [(partition.index, i, f) for i, f in items]
        seen += [(partition.index, last)] if last else []
    page = merged(found)[:limit]
    if limit and len(page) == limit:  # the rest of every partition comes after the page's last
        seen = [(page[-1][0], page[-1][1])]
    return DeadLetterPage(
        items=[_record(names, item) for item in page],
        next_after=_newest_shown(names, seen) or after_id,
        next_before=None,
    )


async def last_id(client: aredis.Redis, stream: str) -> str | None:
    """The newest entry id of a stream, None when it is empty or absent."""
    reply = await client.xrevrange(stream, "+", "-", count=1)
    return as_text(reply[0][0]) if reply else None


async def _last_ids(client: aredis.Redis, names: Names) -> list[tuple[int, str]]:
    """The newest entry of each partition's dead-letter stream (empty ones left out)."""
    found = [(p.index, await last_id(client, p.dead)) for p in names.all_partitions]
    return [(index, entry_id) for index, entry_id in found if entry_id is not None]


async def newest_positions(client: aredis.Redis, names: Names) -> dict[int, str]:
    """Each partition's newest dead-letter id (``0-0`` when empty): follow only what comes next.

    One position per partition, not one merged cursor: on a cluster the partitions' nodes may
    not agree on the time, and a merged cursor could skip a lagging node's new entries.
    """
    found = {p.index: await last_id(client, p.dead) for p in names.all_partitions}
    return {index: entry_id or stream_ids.FIRST_ID for index, entry_id in found.items()}


async def _read_new(
    client: aredis.Redis, names: Names, cursors: dict[int, str], count: int, block_ms: int
) -> list[Located]:
    """One blocking XREAD per partition (a cluster refuses one across slots), merged."""

    async def one(index: int) -> list[Located]:
        stream = names.partition(index).dead
        reply: Any = await client.xread({stream: cursors[index]}, count=count, block=block_ms)
        return [(index, i, f) for _s, raw in reply or () for i, f in _entries(raw)]

    replies = await asyncio.gather(*(one(i) for i in cursors), return_exceptions=True)
    for reply in replies:  # every read has finished: no call is left running on a failure
        if isinstance(reply, BaseException):
            raise reply
    return merged(item for reply in replies if isinstance(reply, list) for item in reply)


async def follow_dead_letters(
    client: aredis.Redis,
    names: Names,
    *,
    after_id: str | None,
    reasons: Sequence[str] = (),
    stages: Sequence[str] = (),
    sources: Sequence[str] = (),
    stop: Callable[[], bool] = lambda: False,
    block_ms: int = 1000,
    count: int = 100,
    on_outage: Callable[[Exception], None] | None = None,
    positions: Mapping[int, str] | None = None,
) -> AsyncIterator[DeadLetterRecord]:
    """Dead letters added after `after_id` (all of them when None), as they arrive.

    Blocks in XREAD (no polling) up to `block_ms` at a time, checking `stop` in between; use a
    client without a socket timeout shorter than `block_ms`. While Redis is unreachable it
    retries with backoff (telling `on_outage`) and goes on from the last id it saw, so a
    restart of Redis neither ends a `tail -f` nor skips what arrived meanwhile. With several
    partitions it reads them all at once, keeps a position in each, and yields each round's
    arrivals in merged time order. `positions` (partition index -> entry id, see
    `newest_positions`) replaces `after_id` with one XREAD position per partition.
    """
    match = matcher(names, reasons=reasons, stages=stages, sources=sources)
    start = _cursor(after_id, "after_id") or DeadLetterId(stream_ids.FIRST_ID)
    cursors = {p.index: stream_ids.read_after(start, p.index) for p in names.all_partitions}
    cursors.update(positions or {})
    failures = 0
    while not stop():
        try:
            arrived = await _read_new(client, names, cursors, count, block_ms)
        except _OUTAGES as exc:
            if on_outage is not None:
                on_outage(exc)
            await asyncio.sleep(_OUTAGE_BACKOFF.delay(failures))
            failures += 1
            continue
        failures = 0
        for item in arrived:
            cursors[item[0]] = item[1]
            if match(item[2]):
                yield _record(names, item)


async def get_dead_letter(
    client: aredis.Redis,
    names: Names,
    entry_id: str,
    archive: DeadLetterArchive | None = None,
) -> DeadLetterRecord | None:
    """One dead letter in full, from its stream or else from `archive` (where retention put
    it: `archived_at` is then set); None when there is no such entry.

    A plain id with several partitions is looked up in each (the first found is returned).
    `ArchiveError` when the stream lacks it and the archive cannot be read.
    """
    parsed = stream_ids.parse_dead_letter_id(entry_id)
    for index in parsed.partitions(names.partitions):
        stream = names.partition(index).dead
        reply = _entries(await client.xrange(stream, parsed.entry, parsed.entry, count=1))
        if reply:
            return _record(names, (index, *reply[0]))
    if archive is None:
        return None
    pairs = [(index, parsed.entry) for index in parsed.partitions(names.partitions)]
    found = await archived.find_archived(archive, names, pairs)
    return archived.archived_record(names, *found[0]) if found else None


async def _partition_stats(
    client: aredis.Redis, names: Names, index: int, chunk: int
) -> tuple[PartitionDeadLetters, StatsTally]:
    stream = names.partition(index).dead
    tally = StatsTally()
    oldest: str | None = None
    newest: str | None = None
    length = int(await client.xlen(stream))
    async for entries in scan(client, stream, chunk=chunk):
        oldest = oldest or entries[0][0]
        newest = entries[-1][0]
        for _entry_id, fields in entries:
            tally.add(fields)
    share = PartitionDeadLetters(
        partition=index,
        stream=stream,
        length=length,
        scanned=tally.scanned,
        by_family=tally.as_dict()["by_family"],
        oldest_id=None if oldest is None else shown_id(names, index, oldest),
        newest_id=None if newest is None else shown_id(names, index, newest),
    )
    return share, tally


def _ends(shares: Sequence[PartitionDeadLetters]) -> tuple[str | None, str | None]:
    """The oldest and newest dead-letter ids over every partition (merged order), as shown."""
    ids = [i for share in shares for i in (share.oldest_id, share.newest_id) if i is not None]
    if not ids:
        return None, None
    ordered = sorted(ids, key=lambda shown: stream_ids.parse_dead_letter_id(shown).key)
    return ordered[0], ordered[-1]


async def dead_letter_stats(
    client: aredis.Redis, names: Names, *, now: datetime | None = None, chunk: int = CHUNK
) -> DeadLetterStats:
    """Counts by reason code and by source, ages and length of every dead-letter stream:
    the totals, and each partition's share."""
    clock = now_utc()
    moment = now or clock
    total = StatsTally()
    shares: list[PartitionDeadLetters] = []
    for partition in names.all_partitions:
        share, tally = await _partition_stats(client, names, partition.index, chunk)
        total.absorb(tally)
        shares.append(share)
    oldest, newest = _ends(shares)
    return DeadLetterStats(
        stream=bus_stream(names, StreamKind.DEAD),
        length=sum(share.length for share in shares),
        oldest_id=oldest,
        oldest_age_s=age_s(_entry_of(oldest), moment),
        newest_id=newest,
        newest_age_s=age_s(_entry_of(newest), moment),
        elapsed_s=(now_utc() - clock).total_seconds(),
        partitions=shares,
        **total.as_dict(),
    )


def _entry_of(shown: str | None) -> str | None:
    return None if shown is None else stream_ids.parse_dead_letter_id(shown).entry


async def _matching(
    client: aredis.Redis,
    names: Names,
    flt: DeadLetterFilter,
    now: datetime | None,
    chunk: int,
    archive: DeadLetterArchive | None = None,
) -> list[Located]:
    """The entries matching `flt`: ids in the order given (from the stream, else from
    `archive` when one is given), else the stream's, oldest first (merged)."""
    since = timedelta(seconds=flt.since_s) if flt.since_s is not None else None
    before = timedelta(seconds=flt.before_s) if flt.before_s is not None else None
    bounds = window(now or now_utc(), since, before)
    if bounds is None:  # older than the epoch: nothing
        return []
    low, high = bounds
    match = matcher_of(names, flt)
    if flt.ids:
        found = await _by_ids(client, names, lookups(names, flt.ids), archive)
        return [item for item in found if _in_window(item[1], low, high) and match(item[2])]
    out: list[Located] = []
    for partition in names.all_partitions:
        async for entries in scan(client, partition.dead, low, high, chunk=chunk):
            out += [(partition.index, i, f) for i, f in entries if match(f)]
    if flt.archived and archive is not None:
        seen = {(index, entry_id) for index, entry_id, _ in out}
        out += await archived.matching_archived(archive, names, bounds, match, seen)
        return merged(out)
    return out if names.partitions == 1 else merged(out)


async def select_dead_letters(
    client: aredis.Redis,
    names: Names,
    flt: DeadLetterFilter,
    *,
    now: datetime | None = None,
    chunk: int = CHUNK,
    archive: DeadLetterArchive | None = None,
) -> list[DeadLetterLine]:
    """Summaries of every dead letter matching `flt`, oldest first (payloads not decoded);
    with `archive`, ids named by `flt` are also found there."""
    found = await _matching(client, names, flt, now, chunk, archive)
    return [_line(names, item) for item in found]


async def match_dead_letters(
    client: aredis.Redis,
    names: Names,
    flt: DeadLetterFilter,
    *,
    now: datetime | None = None,
    chunk: int = CHUNK,
    archive: DeadLetterArchive | None = None,
) -> Selection:
    """Ids of every dead letter matching `flt` (oldest first) and their reason families.

    What a redrive or purge acts on: cheaper than `select_dead_letters` on 100k entries. With
    `archive`, ids named by `flt` are also found there (a redrive sends them from it).
    """
    ids: list[str] = []
    families: Counter[str] = Counter()
    for partition, entry_id, fields in await _matching(client, names, flt, now, chunk, archive):
        ids.append(shown_id(names, partition, entry_id))
        families.update({code_family(c) for c in parse_errors(DEAD_LETTERS.raw(fields, "errors"))})
    counts = [Count(key=k, count=n) for k, n in families.most_common()]
    return Selection(ids=ids, by_family=counts)


async def _by_ids(
    client: aredis.Redis,
    names: Names,
    pairs: Sequence[tuple[int, str]],
    archive: DeadLetterArchive | None,
) -> list[Located]:
    """The entries at these (partition, entry id): on their stream, else (with `archive`) in
    the archive and not redriven from it yet; in the order given."""
    found = {(p, i): (p, i, f) for p, i, f in await _fetch_located(client, names, pairs)}
    missing = [pair for pair in pairs if pair not in found]
    if archive is not None and missing:
        letters = await archived.find_archived(archive, names, missing)
        fresh = [(index, letter) for index, letter in letters if not letter.redriven]
        found |= {(p, i): (p, i, f) for p, i, f in archived.located(fresh)}
    return [found[pair] for pair in pairs if pair in found]


def _in_window(entry_id: str, low: str, high: str) -> bool:
    key = entry_id_key(entry_id)
    if low != "-" and key < entry_id_key(low):
        return False
    return high == "+" or key < entry_id_key(high.lstrip("("))


async def _fetch(client: aredis.Redis, stream: str, ids: Sequence[str]) -> Entries:
    """The entries of one stream with these ids that still exist, in the order given, one
    round trip (every command names the one key: one node on a cluster)."""
    stream_ids.check_stream_ids(ids)
    async with client.pipeline(transaction=False) as pipe:
        for entry_id in ids:
            pipe.xrange(stream, entry_id, entry_id, count=1)
        replies = await pipe.execute()
    return [entry for reply in replies for entry in _entries(reply)]


async def _fetch_located(
    client: aredis.Redis, names: Names, pairs: Sequence[tuple[int, str]]
) -> list[Located]:
    """The entries at these (partition, entry id) that still exist, in the order given: one
    round trip per partition."""
    found: dict[tuple[int, str], Fields] = {}
    for index, entry_ids in by_partition(pairs).items():
        for entry_id, fields in await _fetch(client, names.partition(index).dead, entry_ids):
            found[(index, entry_id)] = fields
    return [(p, i, found[(p, i)]) for p, i in pairs if (p, i) in found]


# --- redrive and purge --------------------------------------------------------------------


def check_target(client: aredis.Redis, names: Names, target: str | None) -> None:
    """Refuse a redrive target that would loop, span slots on a cluster, or (with several
    partitions) gather every partition's dead letters in one stream."""
    if target is None:
        return
    if names.partitions > 1:
        raise ValueError(
            f"with {names.partitions} partitions each dead letter goes back to its own "
            "partition's incoming stream: a redrive takes no target (--to)"
        )
    if target == names.dead:
        raise ValueError("cannot redrive the dead-letter stream into itself")
    if isinstance(client, aredis.RedisCluster) and hash_tag(target) != names.namespace:
        raise ValueError(f"on a cluster the target must carry the hash tag {names.tag}")


def _batches(moves: Entries, max_bytes: int = MOVE_BYTES) -> list[Entries]:
    out: list[Entries] = [[]]
    size = 0
    for entry_id, fields in moves:
        weight = sum(len(k) + len(v) for k, v in fields.items())
        if out[-1] and size + weight > max_bytes:
            out.append([])
            size = 0
        out[-1].append((entry_id, fields))
        size += weight
    return [batch for batch in out if batch]


async def _move(client: aredis.Redis, streams: tuple[str, str], moves: Entries) -> dict[str, str]:
    """Move entries of one dead stream to its target (`streams`): dead id -> new id."""
    script = client.register_script(_REDRIVE_LUA)
    moved: dict[str, str] = {}
    for batch in _batches(moves):
        args: list[bytes | str | int] = []
        for entry_id, fields in batch:
            args += [entry_id, len(fields)]
            for name, value in fields.items():
                args += [name, value]
        reply = await script(keys=list(streams), args=args)
        pairs = [as_text(value) for value in reply]
        moved.update(zip(pairs[::2], pairs[1::2], strict=True))
    return moved


async def redrive(
    client: aredis.Redis,
    names: Names,
    flt: DeadLetterFilter,
    *,
    operator: str,
    target: str | None = None,
    rate: float | None = None,
    dry_run: bool = False,
    selected: Selection | Sequence[str] | None = None,
    progress: Progress | None = None,
    bucket: TokenBucket | None = None,
    now: datetime | None = None,
    archive: DeadLetterArchive | None = None,
) -> RedriveResult:
    """Move the dead letters matching `flt` (or exactly `selected`) back to `target`.

    The default target is the incoming stream of each dead letter's own partition. The result
    names every reason family of what matched (unknown when `selected` is given as bare ids).
    With `archive`, a dead letter named by id that retention archived is sent from there
    (`services.ops.archived`), and those moved from the stream are noted there, so an entry
    archived just as it was redriven is not sent again from the archive.

    At most `rate` a second (token bucket). Each moved entry carries ``redriven_from`` and
    ``origin_source_id``. Entries already gone (redriven or purged by someone else) are
    counted as `gone`. Writes one audit record, dry run included.
    """
    check_target(client, names, target)
    if selected is None:
        selected = await match_dead_letters(client, names, flt, now=now, archive=archive)
    if not isinstance(selected, Selection):
        selected = Selection(ids=list(selected), by_family=[])
    result = RedriveResult(
        target=target or bus_stream(names, StreamKind.EVENTS),
        dry_run=dry_run,
        matched=len(selected.ids),
        moved=0,
        gone=0,
        by_family=selected.by_family,
    )
    if not dry_run:
        bucket = bucket or (TokenBucket(rate) if rate else None)
        plan = _Plan(result, target, archive)
        result = await _redrive_all(client, names, selected.ids, plan, bucket, progress)
    audit = AuditRecord(
        action="redrive",
        operator=operator,
        at=now_utc(),
        filter=flt.describe(),
        matched=result.matched,
        count=result.moved,
        target=result.target,
        dry_run=dry_run,
    )
    return result.model_copy(update={"audit_id": await write_audit(client, names, audit)})


@dataclass
class _Moves:
    """What a redrive moved so far: dead id (as shown) -> new id, and where each went."""

    moved: dict[str, str] = field(default_factory=dict)
    targets: Counter[str] = field(default_factory=Counter)
    other_source: int = 0


@dataclass(frozen=True)
class _Plan:
    """What a redrive reports into, where it sends, and the archive it also sends from."""

    result: RedriveResult
    target: str | None
    archive: DeadLetterArchive | None


async def _move_partition(
    client: aredis.Redis, names: Names, index: int, entry_ids: Sequence[str], plan: _Plan
) -> _Moves:
    """Move these dead letters of one partition back to its incoming stream (or the plan's
    target): from the stream, else from the archive."""
    partition = names.partition(index)
    destination = plan.target or partition.events
    found = await _fetch(client, partition.dead, entry_ids)
    moves = [(i, redrive_fields(shown_id(names, index, i), f)) for i, f in found]
    done = await _move(client, (partition.dead, destination), moves)
    if plan.archive is not None:
        await _note_redriven(plan.archive, partition.dead, list(done))
        rest = [i for i in entry_ids if i not in done]
        if rest:
            done |= await archived.redrive_archived(
                client, plan.archive, names, index, (rest, destination)
            )
    out = _Moves({shown_id(names, index, i): new for i, new in done.items()})
    out.targets[destination] += len(done)
    out.other_source = sum(
        1 for i, f in found if i in done and DEAD_LETTERS.field(f, "source_stream") != destination
    )
    return out


async def _note_redriven(archive: DeadLetterArchive, stream: str, entry_ids: list[str]) -> None:
    """Mark entries just moved off the stream as redriven in the archive too: retention may
    have read them a moment before the move and archive them after it. Best effort: with the
    database down the move stands, and only that race is left open."""
    if entry_ids:
        with contextlib.suppress(ArchiveError):
            await archive.claim_redrives([(stream, i) for i in entry_ids])


async def _redrive_all(
    client: aredis.Redis,
    names: Names,
    ids: Sequence[str],
    plan: _Plan,
    bucket: TokenBucket | None,
    progress: Progress | None,
) -> RedriveResult:
    result = plan.result
    step = min(MOVE_BATCH, bucket.batch) if bucket else MOVE_BATCH
    total = _Moves()
    for start in range(0, len(ids), step):
        batch = ids[start : start + step]
        if bucket is not None:
            await bucket.take(len(batch))
        for index, entry_ids in by_partition(lookups(names, batch)).items():
            done = await _move_partition(client, names, index, entry_ids, plan)
            total.moved.update(done.moved)
            total.targets.update(done.targets)
            total.other_source += done.other_source
        if progress is not None:
            progress(len(batch))
    return result.model_copy(
        update={
            "moved": len(total.moved),
            "gone": len(ids) - len(total.moved),
            "moved_ids": total.moved,
            "other_source": total.other_source,
            "targets": [Count(key=k, count=n) for k, n in sorted(total.targets.items())],
        }
    )


def check_purge(flt: DeadLetterFilter) -> None:
    """The purge guard (`PurgeFilterRequired`): the filter bounds the age (`before_s`) or
    names ids.

    A preview of a purge applies it too, so it never shows a purge that would be refused.
    """
    if flt.before_s is None and not flt.ids:
        raise PurgeFilterRequired("a purge needs an age (before) or explicit ids")


async def purge(
    client: aredis.Redis,
    names: Names,
    flt: DeadLetterFilter,
    *,
    operator: str,
    selected: Sequence[str] | None = None,
    now: datetime | None = None,
) -> PurgeResult:
    """Delete the dead letters matching `flt` (or exactly `selected`); writes an audit record.

    `flt` must bound the age (`before_s`) or name ids: a purge never deletes everything by
    accident (`check_purge`). Each partition's share is deleted from its own stream.
    """
    check_purge(flt)
    if selected is None:
        selected = (await match_dead_letters(client, names, flt, now=now)).ids
    deleted = 0
    for index, entry_ids in by_partition(lookups(names, selected)).items():
        stream = names.partition(index).dead
        for start in range(0, len(entry_ids), 1000):
            deleted += int(await client.xdel(stream, *entry_ids[start : start + 1000]))
    audit = AuditRecord(
        action="purge",
        operator=operator,
        at=now_utc(),
        filter=flt.describe(),
        matched=len(selected),
        count=deleted,
    )
    audit_id = await write_audit(client, names, audit)
    return PurgeResult(matched=len(selected), deleted=deleted, audit_id=audit_id)


# --- audit --------------------------------------------------------------------------------


async def write_audit(client: aredis.Redis, names: Names, record: AuditRecord) -> str:
    """Append one audit record; returns its entry id."""
    fields: dict[bytes, bytes] = {
        b"action": record.action.encode(),
        b"operator": record.operator.encode(),
        b"at": record.at.isoformat().encode(),
        b"filter": orjson.dumps(record.filter),
        b"matched": str(record.matched).encode(),
        b"count": str(record.count).encode(),
        b"target": (record.target or "").encode(),
        b"dry_run": b"1" if record.dry_run else b"0",
    }
    return as_text(await client.xadd(names.redrive_audit, fields))  # type: ignore[arg-type]


def _audit_record(entry_id: str, f: Fields) -> AuditRecord | None:
    try:
        return AuditRecord(
            id=entry_id,
            action=as_text(f.get(b"action")),
            operator=as_text(f.get(b"operator")),
            at=datetime.fromisoformat(as_text(f.get(b"at"))),
            filter=orjson.loads(f.get(b"filter", b"{}")),
            matched=int(f.get(b"matched", b"0")),
            count=int(f.get(b"count", b"0")),
            target=as_text(f.get(b"target")) or None,
            dry_run=f.get(b"dry_run") == b"1",
        )
    except ValueError:  # a foreign entry (pydantic's and orjson's errors are ValueErrors too)
        return None


#: Most audit records one read lists (`runbus dlq audit -n`, ``?limit=`` of the API).
MAX_AUDIT_PAGE = 1000


async def read_audit(client: aredis.Redis, names: Names, limit: int = 20) -> list[AuditRecord]:
    """The newest audit records, newest first (foreign entries skipped)."""
    reply = _entries(await client.xrevrange(names.redrive_audit, "+", "-", count=limit))
    records = (_audit_record(entry_id, fields) for entry_id, fields in reply)
    return [record for record in records if record is not None]
