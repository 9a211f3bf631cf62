"""Redis I/O on the dead-letter stream: list, follow, show, count, redrive, purge; the audit.

Reads go through the stream in chunks (XRANGE/XREVRANGE with a count, continuing after the
last id), so a stream of 100k dead letters never arrives in one reply. A redrive moves each
dead letter with one Lua call that deletes it and appends it to the target only when the
delete removed it: a redrive run twice, retried after a lost reply, or run by two operators at
once moves nothing twice. The dead-letter stream and the default target share the namespace's
hash tag, so that call is one slot on a Redis Cluster too.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson
import redis.asyncio as aredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.ops import stream_ids
from services.ops.logic import (
    StatsTally,
    TokenBucket,
    age_s,
    entry_matches,
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
    PurgeResult,
    RedriveResult,
    Selection,
)
from shared.error_codes import code_family
from shared.names import Names
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


async def list_dead_letters(
    client: aredis.Redis,
    names: Names,
    *,
    reasons: Sequence[str] = (),
    since: timedelta | None = None,
    limit: int = 20,
    after_id: str | None = None,
    before_id: str | None = None,
    now: datetime | None = None,
) -> DeadLetterPage:
    """A page of dead letters matching `reasons` and younger than `since`, oldest first.

    Without `after_id`: the newest `limit` matches (older than `before_id` when given), what
    `tail` prints. With `after_id`: the oldest `limit` matches after it (paging forward).
    `next_after` is the newest id looked at: follow from there and nothing is missed.
    """
    # Both ids are checked even though `after_id` wins: an ignored bad id is still refused.
    for value, field in ((after_id, "after_id"), (before_id, "before_id")):
        if value is not None:
            stream_ids.check_stream_id(value, field)
    bounds = window(now or now_utc(), since, None)
    low = bounds[0] if bounds else "-"
    if after_id is not None:
        start = stream_ids.after(after_id)
        if start is None:  # nothing can come after the last possible id
            return DeadLetterPage(items=[], next_after=after_id, next_before=None)
        return await _page_forward(client, names, reasons, low, start, limit)
    high = "+"
    if before_id is not None:
        end = stream_ids.before(before_id)
        if end is None:  # nothing can come before 0-0
            return DeadLetterPage(items=[], next_after=before_id, next_before=None)
        high = end
    items: list[DeadLetterRecord] = []
    newest: str | None = None
    async for entries in scan(client, names.dead, low, high, reverse=True, first_chunk=limit):
        newest = newest or entries[0][0]
        items += [record_of(i, f) for i, f in entries if entry_matches(f, reasons)]
        if len(items) >= limit:
            items = items[:limit]
            break
    if newest is None and before_id is None:
        newest = await last_id(client, names.dead)
    items.reverse()
    # A full page may have older matches behind it; the next page starts before its oldest.
    more = limit > 0 and len(items) == limit
    return DeadLetterPage(
        items=items, next_after=newest or before_id, next_before=items[0].id if more else None
    )


async def _page_forward(
    client: aredis.Redis, names: Names, reasons: Sequence[str], low: str, start: str, limit: int
) -> DeadLetterPage:
    after_id = start.removeprefix("(")
    if low != "-" and entry_id_key(low) > entry_id_key(after_id):
        start = low
    items: list[DeadLetterRecord] = []
    cursor = after_id
    async for entries in scan(client, names.dead, start, "+", first_chunk=limit):
        for entry_id, fields in entries:
            if entry_matches(fields, reasons):
                items.append(record_of(entry_id, fields))
            cursor = entry_id
            if len(items) == limit:
                return DeadLetterPage(items=items, next_after=cursor, next_before=None)
    return DeadLetterPage(items=items, next_after=cursor, next_before=None)


async def last_id(client: aredis.Redis, stream: str) -> str | None:
    """The newest entry id of a stream, None when it is empty or absent."""
    reply = await client.xrevrange(stream, "+", "-", count=1)
    return as_text(reply[0][0]) if reply else None


async def follow_dead_letters(
    client: aredis.Redis,
    names: Names,
    *,
    after_id: str | None,
    reasons: Sequence[str] = (),
    stop: Callable[[], bool] = lambda: False,
    block_ms: int = 1000,
    count: int = 100,
    on_outage: Callable[[Exception], None] | None = None,
) -> AsyncIterator[DeadLetterRecord]:
    """Dead letters added after `after_id` (all of them when None), as they arrive.

    Blocks in XREAD (no polling) up to `block_ms` at a time, checking `stop` in between; use a
    client without a socket timeout shorter than `block_ms`. While Redis is unreachable it
    retries with backoff (telling `on_outage`) and goes on from the last id it saw, so a
    restart of Redis neither ends a `tail -f` nor skips what arrived meanwhile.
    """
    cursor = after_id or "0-0"
    failures = 0
    while not stop():
        try:
            reply: Any = await client.xread({names.dead: cursor}, count=count, block=block_ms)
        except _OUTAGES as exc:
            if on_outage is not None:
                on_outage(exc)
            await asyncio.sleep(_OUTAGE_BACKOFF.delay(failures))
            failures += 1
            continue
        failures = 0
        for _stream, raw in reply or ():
            for entry_id, fields in _entries(raw):
                cursor = entry_id
                if entry_matches(fields, reasons):
                    yield record_of(entry_id, fields)


async def get_dead_letter(
    client: aredis.Redis, names: Names, entry_id: str
) -> DeadLetterRecord | None:
    """One dead letter in full; None when there is no such entry."""
    stream_ids.check_stream_id(entry_id)
    reply = _entries(await client.xrange(names.dead, entry_id, entry_id, count=1))
    return record_of(*reply[0]) if reply else None


async def dead_letter_stats(
    client: aredis.Redis, names: Names, *, now: datetime | None = None, chunk: int = CHUNK
) -> DeadLetterStats:
    """Counts by reason code and by source, ages and length of the dead-letter stream."""
    clock = now_utc()
    moment = now or clock
    tally = StatsTally()
    oldest: str | None = None
    newest: str | None = None
    length = int(await client.xlen(names.dead))
    async for entries in scan(client, names.dead, chunk=chunk):
        oldest = oldest or entries[0][0]
        newest = entries[-1][0]
        for _entry_id, fields in entries:
            tally.add(fields)
    return DeadLetterStats(
        stream=names.dead,
        length=length,
        oldest_id=oldest,
        oldest_age_s=age_s(oldest, moment),
        newest_id=newest,
        newest_age_s=age_s(newest, moment),
        elapsed_s=(now_utc() - clock).total_seconds(),
        **tally.as_dict(),
    )


async def _matching(
    client: aredis.Redis,
    names: Names,
    flt: DeadLetterFilter,
    now: datetime | None,
    chunk: int,
) -> AsyncIterator[Entries]:
    """The entries matching `flt`, chunk by chunk, oldest first."""
    since = timedelta(seconds=flt.since_s) if flt.since_s is not None else None
    before = timedelta(seconds=flt.before_s) if flt.before_s is not None else None
    bounds = window(now or now_utc(), since, before)
    if bounds is None:  # older than the epoch: nothing
        return
    low, high = bounds
    if flt.ids:
        found = await _fetch(client, names.dead, flt.ids)
        yield [
            (i, f) for i, f in found if _in_window(i, low, high) and entry_matches(f, flt.reasons)
        ]
        return
    async for entries in scan(client, names.dead, low, high, chunk=chunk):
        yield [(i, f) for i, f in entries if entry_matches(f, flt.reasons)]


async def select_dead_letters(
    client: aredis.Redis,
    names: Names,
    flt: DeadLetterFilter,
    *,
    now: datetime | None = None,
    chunk: int = CHUNK,
) -> list[DeadLetterLine]:
    """Summaries of every dead letter matching `flt`, oldest first (payloads not decoded)."""
    return [
        line_of(entry_id, fields)
        async for entries in _matching(client, names, flt, now, chunk)
        for entry_id, fields in entries
    ]


async def match_dead_letters(
    client: aredis.Redis,
    names: Names,
    flt: DeadLetterFilter,
    *,
    now: datetime | None = None,
    chunk: int = CHUNK,
) -> Selection:
    """Ids of every dead letter matching `flt` (oldest first) and their reason families.

    What a redrive or purge acts on: cheaper than `select_dead_letters` on 100k entries.
    """
    ids: list[str] = []
    families: Counter[str] = Counter()
    async for entries in _matching(client, names, flt, now, chunk):
        for entry_id, fields in entries:
            ids.append(entry_id)
            families.update(
                {code_family(c) for c in parse_errors(DEAD_LETTERS.raw(fields, "errors"))}
            )
    counts = [Count(key=k, count=n) for k, n in families.most_common()]
    return Selection(ids=ids, by_family=counts)


def _in_window(entry_id: str, low: str, high: str) -> bool:
    key = entry_id_key(entry_id)
    if low != "-" and key < entry_id_key(low):
        return False
    return high == "+" or key < entry_id_key(high.lstrip("("))


async def _fetch(client: aredis.Redis, stream: str, ids: Sequence[str]) -> Entries:
    """The entries with these ids that still exist, in the order given, one round trip."""
    stream_ids.check_stream_ids(ids)
    async with client.pipeline(transaction=False) as pipe:
        for entry_id in ids:
            pipe.xrange(stream, entry_id, entry_id, count=1)
        replies = await pipe.execute()
    return [entry for reply in replies for entry in _entries(reply)]


# --- redrive and purge --------------------------------------------------------------------


def check_target(client: aredis.Redis, names: Names, target: str) -> None:
    """Refuse a redrive target that would loop, or span slots on a cluster."""
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


async def _move(client: aredis.Redis, names: Names, target: str, moves: Entries) -> dict[str, str]:
    script = client.register_script(_REDRIVE_LUA)
    moved: dict[str, str] = {}
    for batch in _batches(moves):
        args: list[bytes | str | int] = []
        for entry_id, fields in batch:
            args += [entry_id, len(fields)]
            for name, value in fields.items():
                args += [name, value]
        reply = await script(keys=[names.dead, target], args=args)
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
) -> RedriveResult:
    """Move the dead letters matching `flt` (or exactly `selected`) back to `target`.

    The result names every reason family of what matched (unknown when `selected` is given
    as bare ids).

    At most `rate` a second (token bucket). Each moved entry carries ``redriven_from`` and
    ``origin_source_id``. Entries already gone (redriven or purged by someone else) are
    counted as `gone`. Writes one audit record, dry run included.
    """
    target = target or names.events
    check_target(client, names, target)
    if selected is None:
        selected = await match_dead_letters(client, names, flt, now=now)
    if not isinstance(selected, Selection):
        selected = Selection(ids=list(selected), by_family=[])
    ids = selected.ids
    result = RedriveResult(
        target=target,
        dry_run=dry_run,
        matched=len(ids),
        moved=0,
        gone=0,
        by_family=selected.by_family,
    )
    if not dry_run:
        bucket = bucket or (TokenBucket(rate) if rate else None)
        result = await _redrive_all(client, names, ids, result, bucket, progress)
    audit = AuditRecord(
        action="redrive",
        operator=operator,
        at=now_utc(),
        filter=flt.describe(),
        matched=result.matched,
        count=result.moved,
        target=target,
        dry_run=dry_run,
    )
    return result.model_copy(update={"audit_id": await write_audit(client, names, audit)})


async def _redrive_all(
    client: aredis.Redis,
    names: Names,
    ids: Sequence[str],
    result: RedriveResult,
    bucket: TokenBucket | None,
    progress: Progress | None,
) -> RedriveResult:
    step = min(MOVE_BATCH, bucket.batch) if bucket else MOVE_BATCH
    moved: dict[str, str] = {}
    other_source = 0
    for start in range(0, len(ids), step):
        batch = ids[start : start + step]
        if bucket is not None:
            await bucket.take(len(batch))
        found = await _fetch(client, names.dead, batch)
        done = await _move(
            client, names, result.target, [(i, redrive_fields(i, f)) for i, f in found]
        )
        moved.update(done)
        other_source += sum(
            1
            for i, f in found
            if i in done and DEAD_LETTERS.field(f, "source_stream") != result.target
        )
        if progress is not None:
            progress(len(batch))
    return result.model_copy(
        update={
            "moved": len(moved),
            "gone": len(ids) - len(moved),
            "moved_ids": moved,
            "other_source": other_source,
        }
    )


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
    accident.
    """
    if flt.before_s is None and not flt.ids:
        raise ValueError("a purge needs an age (before) or explicit ids")
    if selected is None:
        selected = (await match_dead_letters(client, names, flt, now=now)).ids
    deleted = 0
    for start in range(0, len(selected), 1000):
        deleted += int(await client.xdel(names.dead, *selected[start : start + 1000]))
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


async def read_audit(client: aredis.Redis, names: Names, limit: int = 20) -> list[AuditRecord]:
    """The newest audit records, newest first (foreign entries skipped)."""
    reply = _entries(await client.xrevrange(names.redrive_audit, "+", "-", count=limit))
    records = (_audit_record(entry_id, fields) for entry_id, fields in reply)
    return [record for record in records if record is not None]
