"""Batch, ack, claim and dead-letter machinery shared by every stage (validator, persister, coach).

Why it is hand-written rather than a FastStream stream subscriber (checked against FastStream
0.7.8). FastStream does read a group in batches (``StreamSub(batch=True)``) and acknowledges a
batch in one ``XACK``; it does claim idle entries on Redis 6.2+ (``min_idle_time``:
``XAUTOCLAIM``, one entry per call, in a subscriber that then reads only claimed entries, not
new ones). What it cannot express:

- per-entry delivery counts in a batch read before Redis 8.4: they arrive only with
  ``XREADGROUP ... CLAIM`` (``claim_min_idle_time``: Redis 8.4+, redis-py 7.1+); otherwise a
  single message asks ``XPENDING`` for its own id (``get_delivery_count``), a batch cannot;
- poison isolation: after a failure, re-reading this consumer's own pending entries before new
  ones, and handing those already re-delivered to the handler one suspect entry at a time;
- a deleted group recreated without skipping entries: on ``NOGROUP`` FastStream stops the
  subscriber (and exits the app); a restart creates the group at ``$`` by default, after every
  entry the stream already holds.

Here (one worker per stream; a stage process runs one per partition, `shared.workers`):

- entries are read in batches (``XREADGROUP COUNT n``) and acknowledged in one call per batch;
- at start, and after any failure, the consumer re-reads its own pending entries before new
  ones; entries that were already re-delivered are then handled one at a time, so a poison
  entry burns only its own delivery attempts, and one delivered more than ``max_deliveries``
  times is dead-lettered (``delivery_attempts_exceeded``) without reaching the handler;
- a janitor claims entries idle longer than ``claim_idle_ms`` from dead consumers
  (``XAUTOCLAIM ... JUSTID``, paginated: JUSTID does not count as a delivery);
- pending entries deleted or trimmed from the stream (no fields) are acknowledged;
- a deleted group or stream is recreated (from id 0: nothing is skipped);
- the source stream is trimmed (``XTRIM MINID ~``) only below what every group acknowledged;
- moves ("append to another stream + XACK the source") are one Lua call per batch that
  acknowledges first and appends only when XACK returned 1, so a call retried after a lost
  reply moves nothing twice.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final, Protocol

import redis.asyncio as aredis
from redis.exceptions import (
    AskError,
    ClusterDownError,
    ClusterError,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared import __version__, metrics
from shared.connections import is_redis_full
from shared.logging import get_logger
from shared.models import DeadLetter
from shared.names import Names, Partition, StreamKind
from shared.pipeline import PIPELINE
from shared.retry import Backoff, OutageLog
from shared.settings import Settings
from shared.wire import (
    DATA_FIELD,
    Fields,
    as_text,
    dead_letter_fields,
    entry_id_key,
    entry_time,
    hint_of,
    other_fields,
    unwrap_body,
)

log = get_logger("runbus.consumer")

ATTEMPTS_EXCEEDED = "delivery_attempts_exceeded"
#: Redis unreachable, or a cluster reconfiguring: wait (`REDIS_BACKOFF`) and read again. A
#: cluster client raises the cluster ones once its own retries ran out mid-failover or
#: mid-resharding: CLUSTERDOWN, a slot no master covers yet, TRYAGAIN (a multi-key command
#: while its slot migrates), MOVED/ASK (`AskError`) or a redirect TTL exhausted (`ClusterError`).
#: Several are `ResponseError`s: `_step` catches these first.
_TRANSIENT = (
    RedisConnectionError, RedisTimeoutError, OSError, ClusterError, ClusterDownError,
    SlotNotCoveredError, TryAgainError, AskError,
)  # fmt: skip
#: The error of a blocking read whose stream was deleted (by MIGRATE, while its slot moves).
_UNBLOCKED = "UNBLOCKED"
#: Redis unreachable: the next read waits up to 100 ms, doubling per failure, at most 5 s.
REDIS_BACKOFF: Final = Backoff(base_s=0.1, cap_s=5.0)
#: The handler raised (its entries stay pending): the re-read waits up to 100 ms, doubling,
#: at most 3.2 s.
HANDLER_BACKOFF: Final = Backoff(base_s=0.1, cap_s=3.2)

# KEYS: source stream, then target streams. ARGV: group, then per entry: id, target key index
# (2..), and the entry's fields as one string (`frame_fields`). One argument per entry rather
# than two per field: redis-py's asyncio client packs every argument in Python (~0.5 us each),
# which made packing half the validator's cost of a 15-field dead letter.
_MOVE_LUA = """
local moved = 0
for i = 2, #ARGV, 3 do
  if redis.call('XACK', KEYS[1], ARGV[1], ARGV[i]) == 1 then
    local args, framed, at = {KEYS[tonumber(ARGV[i + 1])], '*'}, ARGV[i + 2], 1
    while at <= #framed do
      args[#args + 1], at = struct.unpack('>I4c0', framed, at)
    end
    redis.call('XADD', unpack(args))
    moved = moved + 1
  end
end
return moved
"""


# XAUTOCLAIM ... JUSTID through Lua: redis-py's reply parser drops the cursor with JUSTID, and
# JUSTID matters because it does not count as a delivery (the re-read that follows does).
_CLAIM_LUA = """
return redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4],
                  'COUNT', ARGV[5], 'JUSTID')
"""


# Not frozen: a frozen dataclass sets each field through object.__setattr__, four times the
# cost of creating a plain one, and a stage creates two of these per entry.
@dataclass(slots=True)
class Entry:
    """One stream entry handed to a handler (treat it as read-only)."""

    id: str
    fields: Fields
    deliveries: int

    @property
    def data(self) -> bytes | None:
        """The ``__data__`` field, if any."""
        return self.fields.get(DATA_FIELD)


@dataclass(slots=True)
class Move:
    """Acknowledge `entry` and append `fields` to `target` (atomically, at most once)."""

    entry: Entry
    target: str
    fields: Fields


def frame_fields(fields: Fields) -> bytes:
    """Fields as one string for the move script: names and values, each length-prefixed.

    Every name and value, in order, is preceded by its length as 4 bytes big-endian; the
    script splits it back with ``struct.unpack('>I4c0', ...)``, so any bytes go through.
    """
    if len(fields) == 1:  # a valid envelope, moved a thousand times a batch: its name framed once
        for name, value in fields.items():
            return b"".join((_framed_name(name), _LENGTH(len(value)), value))
    parts: list[bytes] = []
    for name, value in fields.items():
        parts += (_LENGTH(len(name)), name, _LENGTH(len(value)), value)
    return b"".join(parts)


_LENGTH: Final = struct.Struct(">I").pack


@lru_cache(maxsize=64)
def _framed_name(name: bytes) -> bytes:
    return _LENGTH(len(name)) + name


@dataclass(frozen=True, slots=True)
class BatchDone:
    """A batch the handler finished, or failed: what `WorkerMiddleware.after_batch` is told."""

    entries: list[Entry]
    """The entries handed to the handler (not those dead-lettered before it)."""
    seconds: float
    """How long the handler took."""
    counts: metrics.BatchCounts
    """What the batch reported: `BatchContext.count` and its dead letters."""
    error: Exception | None = None
    """What the handler raised; its entries then stay pending."""


class WorkerMiddleware(Protocol):
    """Hooks a `StreamWorker` calls around each batch (as dramatiq's or FastStream's middleware).

    `before_batch` hooks run in list order, `after_batch` hooks in reverse (the first
    middleware wraps all the others). A hook that raises fails the batch like its handler.
    """

    async def before_batch(self, ctx: BatchContext, entries: Sequence[Entry]) -> None:
        """The handler is about to get `entries`."""
        ...

    async def after_batch(self, ctx: BatchContext, done: BatchDone) -> None:
        """The handler returned or raised (`done.error`)."""
        ...

    def on_dead_letter(self, ctx: BatchContext, entry: Entry, errors: Sequence[str]) -> None:
        """`entry` is being dead-lettered with `errors`.

        Called in a batch, and before one for entries past ``max_deliveries``. Not async: it
        runs where the move is built, inside handlers' plain loops (the validator's).
        """
        ...


@dataclass
class BatchContext:
    """What a handler may do with the entries of its batch, and where it reports its counts."""

    client: aredis.Redis
    settings: Settings
    stream: str
    group: str
    consumer: str
    stage: str
    mover: Any = field(repr=False)
    middleware: Sequence[WorkerMiddleware] = ()
    totals: metrics.Totals = field(default_factory=metrics.Totals)
    """The running totals of what this worker's batches reported (process-local)."""
    counts: metrics.BatchCounts | None = None
    """What the batch in progress reported so far; None between batches."""
    partition: Partition = field(kw_only=True)
    """The partition `stream` belongs to: its entries move only to this partition's streams."""

    def count(self, name: str, amount: int = 1) -> None:
        """Add to a named counter of the batch in progress (``n:<name>`` in the metrics)."""
        if amount and self.counts is not None:
            self.counts.count(name, amount)

    def _dead_lettered(self, entry: Entry, errors: Sequence[str]) -> None:
        if self.counts is not None:  # attempts exceeded, before any batch: not counted
            self.counts.dead_letter(errors)
        for hook in self.middleware:
            hook.on_dead_letter(self, entry, errors)

    async def ack(self, ids: Sequence[str]) -> None:
        """Acknowledge many entries in one XACK."""
        if ids:
            await self.client.xack(self.stream, self.group, *ids)

    async def move(self, moves: Sequence[Move]) -> int:
        """Forward entries atomically (one Lua call); returns how many were moved."""
        if not moves:
            return 0
        keys: list[str] = [self.stream]
        index: dict[str, int] = {}
        args: list[bytes | str | int] = [self.group]
        for mv in moves:
            if mv.target not in index:
                keys.append(mv.target)
                index[mv.target] = len(keys)
            args += [mv.entry.id, index[mv.target], frame_fields(mv.fields)]
        return int(await self.mover(keys=keys, args=args))

    def dead_letter_move(self, entry: Entry, errors: list[str], message: str) -> Move:
        """The move that dead-letters `entry` with its error codes."""
        body = entry.data
        unwrapped = unwrap_body(body) if body is not None else None
        letter = DeadLetter(
            errors=errors,
            message=message,
            original=body if body is not None else b"",
            original_fields=other_fields(entry.fields),
            source_stream=self.stream,
            source_id=entry.id,
            group=self.group,
            consumer=self.consumer,
            stage=self.stage,
            delivery_count=entry.deliveries,
            first_seen=entry_time(entry.id),
            dead_at=datetime.now(UTC),
            taxonomy_version=self.settings.taxonomy.version,
            service_version=__version__,
            hint=hint_of(unwrapped),
        )
        self._dead_lettered(entry, errors)
        return Move(entry, self.partition.dead, dead_letter_fields(letter))

    async def dead_letter(self, rejects: Sequence[tuple[Entry, list[str], str]]) -> int:
        """Dead-letter entries: for each, XACK it and, only if that acknowledged it, XADD."""
        return await self.move([self.dead_letter_move(e, codes, msg) for e, codes, msg in rejects])


BatchHandler = Callable[[list[Entry], BatchContext], Awaitable[None]]


class StreamWorker(metrics.CountsBatches):
    """Runs one consumer of one group on one stream (of one partition) until `stop` is set.

    `middleware` sees every batch (default: `metrics.MetricsMiddleware`, the stage's counters
    hash); pass a list to replace it, e.g. ``[MetricsMiddleware(), mine]``. `partition` is the
    one `stream` belongs to (found from the name when not given; partition 0 for a stream of
    no partition); `totals` may be shared by the workers of one stage process.
    """

    def __init__(
        self,
        client: aredis.Redis,
        settings: Settings,
        *,
        stream: str,
        group: str,
        stage: str,
        handler: BatchHandler,
        consumer: str | None = None,
        middleware: Sequence[WorkerMiddleware] | None = None,
        partition: Partition | None = None,
        totals: metrics.Totals | None = None,
    ) -> None:
        self.client = client
        self.partition = partition or partition_holding(settings.names, stream)
        self.settings = settings
        self.stream = stream
        self.group = group
        self.stage = stage
        self.consumer = consumer or settings.consumer_for(stage)
        self._handler = handler
        self._middleware = list(middleware) if middleware is not None else default_middleware()
        self._recovering = True
        self._claims = 0  # bumped by the janitor: a recovery pass must not miss its claims
        self._failures = 0
        self._group_ready = False
        self._outage = OutageLog(
            log, "redis_unavailable", "redis_recovered", stage=stage, **self._where
        )
        self.totals = totals if totals is not None else metrics.Totals()
        self.ctx = BatchContext(
            client, settings, stream, group, self.consumer, stage,
            client.register_script(_MOVE_LUA), self._middleware, self.totals,
            partition=self.partition,
        )  # fmt: skip
        self._claim = client.register_script(_CLAIM_LUA)

    @property
    def _where(self) -> dict[str, int]:
        """The log field naming this worker's partition (none with a single partition)."""
        return {"partition": self.partition.index} if self.settings.partitions > 1 else {}

    async def ensure_group(self) -> None:
        """Create the group (and the stream) if missing; from id 0 so nothing is skipped.

        A full Redis (``maxmemory``, noeviction) refuses ``XGROUP CREATE`` with OOM even when
        the group exists: then the group is looked up, and a worker whose group exists starts
        reading (its moves free memory, and are allowed at OOM: `_MOVE_LUA` acknowledges
        first, and Redis lets a script that already wrote finish).
        """
        try:
            await self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" in str(exc):
                return
            if not is_redis_full(exc) or not await self._group_exists():
                raise

    async def _group_exists(self) -> bool:
        try:
            groups = await self.client.xinfo_groups(self.stream)
        except ResponseError:  # no stream
            return False
        return any(as_text(g["name"]) == self.group for g in groups)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set; the batch in hand is finished first."""
        log.info(
            "worker_started",
            stream=self.stream, group=self.group, consumer=self.consumer, **self._where,
        )  # fmt: skip
        background = [
            asyncio.create_task(
                self._every(self.settings.janitor_interval_s, self.claim_idle, stop)
            ),
            asyncio.create_task(self._every(self.settings.trim_interval_s, self.trim, stop)),
        ]
        try:
            while not stop.is_set():
                await self._step(stop)
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            log.info("worker_stopped", consumer=self.consumer, batches=self.batches, **self._where)

    async def _step(self, stop: asyncio.Event) -> None:
        try:
            if not self._group_ready:  # at start and after an outage (Redis may have lost it)
                await self.ensure_group()
                self._group_ready = True
            recovering, claims = self._recovering, self._claims
            handled = await (self._recover() if recovering else self._read_new())
            self._outage.up()
            self._failures = 0
            if recovering and not handled and claims == self._claims:
                self._recovering = False
        except Exception as exc:  # an outage, a lost group, or the handler failed
            await self._on_error(exc, stop)

    async def _on_error(self, exc: Exception, stop: asyncio.Event) -> None:
        if is_transient(exc):
            self._outage.down(exc)
            self._group_ready = False
            await sleep_unless_stopped(stop, REDIS_BACKOFF.delay(self._failures))
            self._failures += 1
            self._recovering = True
        elif isinstance(exc, ResponseError) and "NOGROUP" in str(exc):
            log.warning("group_missing_recreating", stream=self.stream, group=self.group)
            await self.ensure_group()
            self._recovering = True
        else:  # the handler failed: its entries stay pending
            await self._failed(exc, stop)

    async def _failed(self, exc: Exception, stop: asyncio.Event) -> None:
        log.error("batch_failed", stage=self.stage, error=repr(exc), **self._where)
        delay = HANDLER_BACKOFF.delay(self._failures)
        self._failures += 1
        self._recovering = True
        await sleep_unless_stopped(stop, delay)

    async def _read_new(self) -> int:
        reply = await self.client.xreadgroup(
            self.group,
            self.consumer,
            {self.stream: ">"},
            count=self.settings.batch_size,
            block=self.settings.block_ms,
        )
        entries = [Entry(as_text(i), f, 1) for i, f in _entries_of(reply) if f]
        if entries:
            await self._handle(entries)
        return len(entries)

    async def _recover(self) -> int:
        """Handle our own pending entries: in a batch the first time, one by one after that."""
        pending = await self.client.xpending_range(
            self.stream, self.group, "-", "+", self.settings.batch_size, self.consumer
        )
        if not pending:
            return 0
        suspect = max(int(p["times_delivered"]) for p in pending) >= 2
        count = 1 if suspect else len(pending)
        counts = {as_text(p["message_id"]): int(p["times_delivered"]) for p in pending}  # type: ignore[arg-type]
        reply = await self.client.xreadgroup(
            self.group, self.consumer, {self.stream: "0"}, count=count
        )
        rows = _entries_of(reply)
        gone = [as_text(i) for i, f in rows if not f]
        await self.ctx.ack(gone)  # deleted or trimmed while pending: nothing left to handle
        entries = [Entry(as_text(i), f, counts.get(as_text(i), 1) + 1) for i, f in rows if f]
        await self._handle(entries)
        return len(rows)

    async def _handle(self, entries: list[Entry]) -> None:
        limit = self.settings.max_deliveries
        exceeded = [e for e in entries if e.deliveries > limit]
        if exceeded:
            msg = f"delivered more than {limit} times to {self.stage} without being handled"
            await self.ctx.dead_letter([(e, [ATTEMPTS_EXCEEDED], msg) for e in exceeded])
            log.warning(
                "entries_dead_lettered", code=ATTEMPTS_EXCEEDED, count=len(exceeded), **self._where
            )
            entries = [e for e in entries if e.deliveries <= limit]
        if entries:
            await self._batch(entries)

    async def _batch(self, entries: list[Entry]) -> None:
        """Hand `entries` to the handler, between the middleware's hooks."""
        ctx = self.ctx
        for hook in self._middleware:
            await hook.before_batch(ctx, entries)
        ctx.counts = counts = metrics.BatchCounts()
        error: Exception | None = None
        started = time.perf_counter()
        try:
            await self._handler(entries, ctx)
        except Exception as exc:  # reported to the middleware, then raised on
            error = exc
        finally:
            ctx.counts = None
        done = BatchDone(entries, time.perf_counter() - started, counts, error)
        if error is None:
            self.totals.add(len(entries), counts)
        for hook in reversed(self._middleware):
            await hook.after_batch(ctx, done)
        if error is not None:
            raise error

    async def claim_idle(self) -> int:
        """Take over entries idle longer than claim_idle_ms (e.g. from a dead consumer)."""
        cursor, claimed = "0-0", 0
        while True:
            reply = await self._claim(
                keys=[self.stream],
                args=[self.group, self.consumer, self.settings.claim_idle_ms, cursor,
                      self.settings.batch_size],
            )  # fmt: skip
            cursor, ids = as_text(reply[0]), reply[1]
            claimed += len(ids)
            if cursor == "0-0":
                break
        if claimed:
            log.info("claimed_idle_entries", stage=self.stage, count=claimed, **self._where)
            self._claims += 1
            self._recovering = True
        return claimed

    async def trim(self) -> None:
        """Trim the source stream below the oldest entry some group still needs."""
        minid = await safe_trim_id(self.client, self.stream, self.settings)
        if minid is not None:
            await self.client.xtrim(self.stream, minid=minid, approximate=True)

    async def _every(
        self, interval: float, job: Callable[[], Awaitable[Any]], stop: asyncio.Event
    ) -> None:
        while not await sleep_unless_stopped(stop, interval):
            try:
                await job()
            except Exception as exc:  # the main loop reports outages; keep the job alive
                log.debug("background_job_failed", job=job.__name__, error=repr(exc))


def is_transient(exc: BaseException) -> bool:
    """Redis unreachable or a cluster reconfiguring (`_TRANSIENT`): wait it out and read again.

    Also redis-py's own AttributeError: its asyncio cluster client (8.1), refreshing the topology
    after a MOVED or a lost node, disconnects in the background the connections it thought idle,
    one of which another task may just have taken; that command then fails inside redis-py with
    ``'NoneType' object has no attribute 'writelines'``. Only when raised in redis-py's code: an
    AttributeError of a handler is a bug, not an outage.

    And ``UNBLOCKED the stream key no longer exists``: a blocking read whose stream was just
    deleted, which is what ``MIGRATE`` does to the source node's copy while a slot moves; the
    next read follows the slot (and recreates the group only if the stream is really gone).
    """
    if isinstance(exc, _TRANSIENT):
        return True
    if isinstance(exc, ResponseError):
        return str(exc).startswith(_UNBLOCKED)
    return isinstance(exc, AttributeError) and _raised_in_redis(exc)


def _raised_in_redis(exc: BaseException) -> bool:
    tb, module = exc.__traceback__, ""
    while tb is not None:
        module, tb = str(tb.tb_frame.f_globals.get("__name__", "")), tb.tb_next
    return module.split(".")[0] == "redis"


def partition_holding(names: Names, stream: str) -> Partition:
    """The partition one of whose streams is `stream`; partition 0 if none is (a test's own)."""
    for partition in names.all_partitions:
        if stream in (partition.stream(kind) for kind in StreamKind):
            return partition
    return names.partition(0)


def default_middleware() -> list[WorkerMiddleware]:
    """What a worker gets when it is given none: the stage's metrics."""
    return [metrics.MetricsMiddleware()]


async def safe_trim_id(client: aredis.Redis, stream: str, settings: Settings) -> str | None:
    """The lowest id every expected group still needs, or None when trimming is unsafe."""
    expected = PIPELINE.groups_of(settings.names, stream)
    if not expected:
        return None
    try:
        groups = {as_text(g["name"]): g for g in await client.xinfo_groups(stream)}
    except ResponseError:
        return None
    if any(name not in groups for name in expected):
        return None  # a group that does not exist yet has acknowledged nothing
    floor = _older_than(settings.stream_min_age_s)
    for name in expected:
        floor = min(floor, await _group_floor(client, stream, name, groups[name]), key=entry_id_key)
    return floor


async def _group_floor(client: aredis.Redis, stream: str, name: str, info: Any) -> str:
    summary = await client.xpending(stream, name)
    if summary["pending"]:
        return as_text(summary["min"])
    ms, seq = entry_id_key(as_text(info["last-delivered-id"]))
    return f"{ms}-{seq + 1}"


def _older_than(age_s: float) -> str:
    return f"{int((time.time() - age_s) * 1000)}-0"


def _entries_of(reply: Any) -> list[tuple[bytes, Fields | None]]:
    if not reply:
        return []
    if isinstance(reply, dict):  # RESP3
        return [row for rows in reply.values() for row in rows[0]]
    return [row for _, rows in reply for row in rows]


async def sleep_unless_stopped(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep unless stopped; True when `stop` was set."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True
