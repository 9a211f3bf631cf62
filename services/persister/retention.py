"""Dead-letter retention: archive what is past the policy, then trim it off the stream.

It runs in the persister, beside its workers. The persister holds the history store already,
and on SQLite it is the file's one writer: a retention job in another process (the validator)
would be a second writer contending for SQLite's single write lock, which `sole_writer` exists
to prevent. On PostgreSQL every persister runs it; their sweeps may overlap, which the
archive's key makes harmless (an entry archived twice is stored once, and each sweep trims
only what it saw archived).

A sweep runs every ``dead_letter_sweep_interval_s``, and sooner when a stream has used half its
room (its length and arrivals are read every `CHECK_S`): the room a sweep leaves is the
headroom, or `RESERVE_S` of arrivals at the measured rate when more, so under a flood the
stream stays within its limit as long as the archive keeps up with what arrives. One sweep,
for each partition's dead-letter stream, a chunk at a time from the oldest entry:

1. read the oldest entries (``XRANGE - + COUNT n``);
2. take the prefix past the policy: older than ``dead_letter_max_age_s``, or among the oldest
   ``XLEN - (dead_letter_max_entries - room)`` (the length read again at every chunk; the
   room, `Policy.room`, is what may arrive before the next sweep);
3. archive that prefix (one transaction, idempotent on ``(stream, entry id)``);
4. only once the archive has committed, ``XTRIM MINID <after the last archived id>`` (exact):
   it removes entries below that id, every one of them archived in step 3 (``XADD`` only ever
   appends above a stream's last id, so no unarchived entry can appear below it).

A crash between 3 and 4 leaves archived entries on the stream: the next sweep archives them
again (nothing new is stored) and trims them. A database that is down stops the sweep before
any trim: the stream then grows past the policy, and `DEAD_LETTER_RETENTION`'s ``error``
field (``runbus status``, ``/metrics``) says why.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aredis
from redis.exceptions import RedisError
from redis.typing import EncodableT, FieldT

from services.history import HistoryError
from shared.archive import DeadLetterArchive, archive_row
from shared.consumer import sleep_unless_stopped
from shared.logging import get_logger
from shared.names import Names
from shared.retry import OutageLog
from shared.settings import Settings
from shared.wire import Fields, as_text, entry_id_key

log = get_logger("runbus.retention")

#: Entries read, archived and trimmed per step: one archive transaction each, so the
#: persister's own inserts (same store, same lock) wait at most one chunk.
CHUNK = 1000
#: Part of the length limit a sweep leaves free, so that the stream stays within the limit
#: between sweeps: a stream at most 90 % full after a sweep, swept again at 95 %.
HEADROOM = 0.1
#: Under a flood a sweep leaves room for this long of arrivals at the rate measured, when
#: that is more than the headroom (at most half the limit): the next check and sweep come
#: before the room is used (s).
RESERVE_S = 1.0
#: How often the persister reads the streams' lengths between sweeps (one pipelined ``XLEN``
#: per partition): a flood is swept within this, not at the next interval (s).
CHECK_S = 0.25


@dataclass(frozen=True, slots=True)
class Policy:
    """How long and how many dead letters stay on each partition's stream (0: no limit)."""

    max_age_s: float
    max_entries: int

    @classmethod
    def of(cls, settings: Settings) -> Policy:
        """The policy the settings give."""
        return cls(settings.dead_letter_max_age_s, settings.dead_letter_max_entries)

    def cutoff_ms(self, now_s: float) -> int | None:
        """Entries dead-lettered before this time (ms) are past the age limit; None: no limit."""
        return int((now_s - self.max_age_s) * 1000) if self.max_age_s > 0 else None

    @property
    def headroom(self) -> int:
        """Entries a sweep for length leaves free below the limit (`HEADROOM` of it): what
        may arrive before the next look at the length without passing the limit."""
        return int(self.max_entries * HEADROOM)

    def room(self, rate: float = 0.0) -> int:
        """Entries a sweep leaves free below the limit for a stream receiving `rate` a
        second: the headroom, or `RESERVE_S` of arrivals when more (at most half the limit)."""
        return min(self.max_entries // 2, max(self.headroom, int(rate * RESERVE_S)))

    def excess(self, length: int, rate: float = 0.0) -> int:
        """How many of the oldest of `length` entries a sweep takes for the length limit:
        down to the limit less its `room`, once the stream is past that."""
        if self.max_entries <= 0:
            return 0
        return max(0, length - (self.max_entries - self.room(rate)))

    def crowded(self, length: int, rate: float = 0.0) -> bool:
        """True when a stream of `length` entries has used half its `room`: sweep it now, not
        at the next interval."""
        return self.max_entries > 0 and length > self.max_entries - self.room(rate) // 2


@dataclass
class Arrivals:
    """Entries each stream received a second, from ``XINFO STREAM``'s ``entries-added`` at two
    looks (a count trims never lower, unlike the length)."""

    seen: dict[str, tuple[float, int]] = field(default_factory=dict)
    rates: dict[str, float] = field(default_factory=dict)

    def saw(self, stream: str, now_s: float, added: int) -> None:
        """`stream` had received `added` entries in all at `now_s`."""
        last = self.seen.get(stream)
        self.seen[stream] = (now_s, added)
        if last is not None and now_s > last[0]:
            self.rates[stream] = max(0.0, (added - last[1]) / (now_s - last[0]))

    def rate(self, stream: str) -> float:
        """The last measured rate (0 before two looks)."""
        return self.rates.get(stream, 0.0)


def expired_prefix(ids: Sequence[str], cutoff_ms: int | None, excess: int) -> int:
    """How many of `ids` (oldest first) are past the policy: the first `excess`, and every
    one older than `cutoff_ms`. Ids are in order, so what is past the policy is a prefix."""
    count = min(excess, len(ids))
    if cutoff_ms is not None:
        while count < len(ids) and entry_id_key(ids[count])[0] < cutoff_ms:
            count += 1
    return count


def after(entry_id: str) -> str:
    """The smallest id above `entry_id`: what ``XTRIM MINID`` keeps from."""
    ms, seq = entry_id_key(entry_id)
    return f"{ms + 1}-0" if seq == _MAX_SEQ else f"{ms}-{seq + 1}"


_MAX_SEQ = 2**64 - 1


@dataclass
class Sweep:
    """What one sweep did."""

    archived: int = 0  #: Entries newly written to the archive.
    expired: int = 0  #: Entries trimmed off their stream (each one archived first).


async def sweep_stream(
    client: aredis.Redis,
    archive: DeadLetterArchive,
    stream: str,
    policy: Policy,
    done: Sweep,
    *,
    now_s: float | None = None,
    chunk: int = CHUNK,
    rate: float = 0.0,
) -> None:
    """Archive, then trim, what `policy` expires on one dead-letter stream receiving `rate`
    entries a second (counted in `done` chunk by chunk, so a sweep that fails half-way
    still reports what it did)."""
    cutoff = policy.cutoff_ms(time.time() if now_s is None else now_s)
    while True:
        # The length again at every chunk: under a flood the stream grows while the sweep
        # runs, and the sweep goes on until it is within its policy.
        excess = policy.excess(int(await client.xlen(stream)), rate)
        reply: Any = await client.xrange(stream, "-", "+", count=chunk)
        entries: list[tuple[str, Fields]] = [(as_text(i), f or {}) for i, f in reply]
        count = expired_prefix([i for i, _ in entries], cutoff, excess)
        if count == 0:
            return
        taken = entries[:count]
        done.archived += await archive.archive_dead_letters(
            [archive_row(stream, entry_id, fields) for entry_id, fields in taken]
        )
        # Only now, with the archive committed: everything below this id is archived. Exact
        # (redis-py defaults to "~"), so the counts are exact and the memory is freed now.
        done.expired += int(
            await client.xtrim(stream, minid=after(taken[-1][0]), approximate=False)
        )
        if count < len(entries):
            return


async def sweep(
    client: aredis.Redis,
    archive: DeadLetterArchive,
    names: Names,
    policy: Policy,
    done: Sweep,
    arrivals: Arrivals | None = None,
) -> None:
    """One sweep over every partition's dead-letter stream, counted in `done` (each leaving
    room for its `arrivals`)."""
    for partition in names.all_partitions:
        rate = arrivals.rate(partition.dead) if arrivals is not None else 0.0
        await sweep_stream(client, archive, partition.dead, policy, done, rate=rate)


async def _archive_gauges(archive: DeadLetterArchive) -> dict[FieldT, EncodableT]:
    try:
        size = await archive.archive_size()
    except HistoryError as exc:  # reported at the next sweep
        log.debug("archive_size_failed", error=repr(exc))
        return {}
    return {
        "archive_entries": size.entries,
        "archive_bytes": size.bytes,
        "archive_oldest_ms": size.oldest_ms or 0,
        "archive_redriven": size.redriven,
    }


async def report(
    client: aredis.Redis, archive: DeadLetterArchive, names: Names, done: Sweep, error: str
) -> None:
    """Add a sweep's counts to the retention hash, with the archive's size; never raises."""
    gauges: dict[FieldT, EncodableT] = {"last_sweep_at": time.time(), "error": error}
    if not error:
        gauges |= await _archive_gauges(archive)
    try:
        async with client.pipeline(transaction=False) as pipe:
            pipe.hincrby(names.dead_letter_retention, "archived", done.archived)
            pipe.hincrby(names.dead_letter_retention, "expired", done.expired)
            pipe.hset(names.dead_letter_retention, mapping=gauges)
            await pipe.execute()
    except (RedisError, OSError) as exc:  # a full Redis refuses HSET: the next sweep reports
        log.debug("retention_report_failed", error=repr(exc))


class Retention:
    """The persister's retention job: a sweep every ``dead_letter_sweep_interval_s``."""

    def __init__(self, client: aredis.Redis, archive: DeadLetterArchive, settings: Settings):
        self.client = client
        self.archive = archive
        self.settings = settings
        self.policy = Policy.of(settings)
        self.arrivals = Arrivals()
        self.outage = OutageLog(log, "dead_letter_archive_unavailable", "dead_letter_archive_ok")

    async def once(self) -> Sweep:
        """One sweep, then its report (an unreachable database or Redis is reported, not
        raised: the next sweep tries again)."""
        done, error = Sweep(), ""
        try:
            names = self.settings.names
            await sweep(self.client, self.archive, names, self.policy, done, self.arrivals)
            self.outage.up()
        except (HistoryError, RedisError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
            self.outage.down(exc)
        if done.archived or done.expired:
            log.info("dead_letters_expired", archived=done.archived, expired=done.expired)
        await report(self.client, self.archive, self.settings.names, done, error)
        return done

    async def run(self, stop: asyncio.Event) -> None:
        """Sweep every interval, and sooner when a stream is `crowded`, until `stop` is set."""
        interval = self.settings.dead_letter_sweep_interval_s
        due = time.monotonic() + interval
        while not await sleep_unless_stopped(stop, min(CHECK_S, interval)):
            if time.monotonic() >= due or await self.crowded():
                await self.once()
                due = time.monotonic() + interval

    async def crowded(self) -> bool:
        """True when a dead-letter stream has used half its room (a failed read: False, the
        next sweep reports the outage). Notes each stream's arrivals on the way."""
        if self.policy.max_entries <= 0:
            return False
        streams = [p.dead for p in self.settings.names.all_partitions]
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for stream in streams:
                    pipe.xinfo_stream(stream)
                replies = await pipe.execute(raise_on_error=False)
        except (RedisError, OSError) as exc:
            log.debug("dead_letter_lengths_failed", error=repr(exc))
            return False
        now, found = time.monotonic(), False
        for stream, info in zip(streams, replies, strict=True):
            if isinstance(info, Exception):  # no such stream yet: nothing to sweep
                continue
            length = int(info.get("length", 0))
            self.arrivals.saw(stream, now, int(info.get("entries-added") or length))
            found = found or self.policy.crowded(length, self.arrivals.rate(stream))
        return found
