"""The producer client: publish events to the incoming stream of their run's partition.

Every event is written to `Names.partition_for(run_id)` (the documented routing rule,
`shared.names.partition_of`), so a run's events stay together and in order; with one
partition that is the one incoming stream.

- `Producer` (asyncio) and `SyncProducer`: `publish(event)` returns the entry id,
  `publish_many(events)` sends one pipeline (a cluster client splits it by node). Events are
  validated client-side by default, and get an ``event_id`` (a UUID) when they have none, so a
  retried publish is stored once.
- `BestEffortProducer`: for the Pulse contract, where telemetry never blocks or fails the run.
  `publish()` only appends to a bounded in-memory buffer; a background thread sends it, and
  while Redis is unreachable it writes to a durable SQLite spool that is drained, in order,
  once Redis is back (retried with jittered backoff up to ``max_backoff_s``), each event to
  its run's partition. A full Redis (``maxmemory`` reached: ``OOM`` on ``XADD``) is handled
  the same way: what it refused is spooled and retried, what it took is not sent again.
  Counters: published, spooled, dropped. `close()` flushes.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import orjson
import redis
import redis.asyncio as aredis
import redis.cluster
from redis.exceptions import RedisClusterException
from redis.typing import EncodableT, FieldT

from shared.logging import get_logger
from shared.models import Event
from shared.names import Names
from shared.retry import Backoff, OutageLog
from shared.taxonomy import Taxonomy
from shared.validation import DEFAULT_MAX_BYTES, Rejected, validate_document
from shared.wire import DATA_FIELD, as_text, event_body

log = get_logger("runbus.producer")

EventLike = Event | dict[str, Any]


class InvalidEvent(ValueError):
    """Raised by `publish` when client-side validation rejects an event."""

    def __init__(self, rejected: Rejected) -> None:
        super().__init__(", ".join(rejected.errors))
        self.errors = rejected.errors
        self.rejected = rejected


@dataclass(frozen=True, slots=True)
class Outgoing:
    """An encoded event and the run id that routes it to a partition."""

    run_id: str | None
    body: bytes

    @classmethod
    def of_body(cls, body: bytes) -> Outgoing:
        """Route an already encoded body (a spooled one, a raw one) by the run id inside it."""
        return cls(body_run_id(body), body)

    def stream(self, names: Names) -> str:
        """The incoming stream this event is written to."""
        return names.partition_for(self.run_id).events


def run_id_of(doc: Mapping[str, Any]) -> str | None:
    """The run id that routes a document: its ``run_id`` when that is a string, else None."""
    run_id = doc.get("run_id")
    return run_id if isinstance(run_id, str) else None


def body_run_id(body: bytes) -> str | None:
    """The routing run id of an encoded body; None when it is not a JSON object (never raises)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return run_id_of(doc) if isinstance(doc, dict) else None


def prepare_outgoing(
    event: EventLike, taxonomy: Taxonomy | None, max_bytes: int = DEFAULT_MAX_BYTES
) -> Outgoing:
    """Give the event an id, validate it (when a taxonomy is given, size included), encode it."""
    doc = dict(event) if isinstance(event, dict) else event.model_dump(mode="json")
    if not doc.get("event_id"):
        doc["event_id"] = uuid.uuid4().hex
    if taxonomy is None:
        return Outgoing(run_id_of(doc), event_body(doc))
    result = validate_document(doc, taxonomy)
    if isinstance(result, Rejected):
        raise InvalidEvent(result)
    body = event_body(result.event)
    if len(body) > max_bytes:
        raise InvalidEvent(
            Rejected(["payload_too_large"], [f"{len(body)} bytes > limit {max_bytes}"])
        )
    return Outgoing(result.event.run_id, body)


def prepare(
    event: EventLike, taxonomy: Taxonomy | None, max_bytes: int = DEFAULT_MAX_BYTES
) -> bytes:
    """The encoded body `prepare_outgoing` gives (id added, validated when a taxonomy is given)."""
    return prepare_outgoing(event, taxonomy, max_bytes).body


class Producer:
    """Asyncio producer on a redis.asyncio client."""

    def __init__(
        self, client: aredis.Redis, names: Names, taxonomy: Taxonomy | None = None
    ) -> None:
        self._client = client
        self._names = names
        self._taxonomy = taxonomy

    async def publish(self, event: EventLike) -> str:
        """Publish one event to its run's partition; returns its entry id."""
        out = prepare_outgoing(event, self._taxonomy)
        entry_id = await self._client.xadd(out.stream(self._names), event_fields_raw(out.body))
        return as_text(entry_id)

    async def publish_many(self, events: Iterable[EventLike]) -> list[str]:
        """Publish many events in one pipeline; returns their entry ids in order."""
        outgoing = [prepare_outgoing(e, self._taxonomy) for e in events]
        async with self._client.pipeline(transaction=False) as pipe:
            for out in outgoing:
                pipe.xadd(out.stream(self._names), event_fields_raw(out.body))
            return [as_text(i) for i in await pipe.execute()]


class SyncProducer:
    """Blocking producer on a redis-py client."""

    def __init__(self, client: redis.Redis, names: Names, taxonomy: Taxonomy | None = None) -> None:
        self._client = client
        self._names = names
        self._taxonomy = taxonomy

    def publish(self, event: EventLike) -> str:
        """Publish one event to its run's partition; returns its entry id."""
        out = prepare_outgoing(event, self._taxonomy)
        return as_text(self._client.xadd(out.stream(self._names), event_fields_raw(out.body)))

    def publish_many(self, events: Iterable[EventLike]) -> list[str]:
        """Publish many events in one pipeline; returns their entry ids in order."""
        outgoing = [prepare_outgoing(e, self._taxonomy) for e in events]
        with self._client.pipeline(transaction=False) as pipe:
            _add_all(pipe, self._names, outgoing)
            return [as_text(i) for i in pipe.execute()]


def _add_all(pipe: redis.client.Pipeline, names: Names, outgoing: Iterable[Outgoing]) -> None:
    """Queue one XADD per event on its partition's stream (a cluster pipeline routes each)."""
    for out in outgoing:
        pipe.xadd(out.stream(names), event_fields_raw(out.body))


def event_fields_raw(body: bytes) -> dict[FieldT, EncodableT]:
    """Entry fields for an already encoded body."""
    return {DATA_FIELD: body}


@dataclass
class ProducerCounters:
    """What a best-effort producer did with the events handed to it."""

    published: int = 0
    spooled: int = 0
    dropped: int = 0
    invalid: int = 0


class Spool:
    """A durable FIFO of encoded events in a SQLite file (used only by the sender thread)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS spool (seq INTEGER PRIMARY KEY AUTOINCREMENT, body BLOB)"
        )

    def append(self, bodies: Sequence[bytes]) -> None:
        """Append bodies at the tail, durably."""
        with self._db:
            self._db.executemany("INSERT INTO spool(body) VALUES (?)", [(b,) for b in bodies])

    def head(self, limit: int) -> list[tuple[int, bytes]]:
        """The oldest bodies, in order."""
        rows = self._db.execute("SELECT seq, body FROM spool ORDER BY seq LIMIT ?", (limit,))
        return list(rows)

    def remove_through(self, seq: int) -> None:
        """Forget every body up to and including `seq` (they were delivered)."""
        with self._db:
            self._db.execute("DELETE FROM spool WHERE seq <= ?", (seq,))

    def requeue(self, seq: int, bodies: Sequence[bytes]) -> None:
        """Forget every body up to `seq` and append `bodies` (those of them not delivered),
        in one transaction: a crash keeps either the old head or the new tail, never both."""
        self._db.execute("BEGIN IMMEDIATE")  # autocommit connection: the transaction is explicit
        try:
            self._db.execute("DELETE FROM spool WHERE seq <= ?", (seq,))
            self._db.executemany("INSERT INTO spool(body) VALUES (?)", [(b,) for b in bodies])
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def __len__(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM spool").fetchone()[0])

    def close(self) -> None:
        """Close the file."""
        self._db.close()


class BestEffortProducer:
    """Fire-and-forget publishing that never blocks or raises into the caller's run."""

    def __init__(
        self,
        redis_url: str,
        names: Names,
        spool_path: Path,
        taxonomy: Taxonomy | None = None,
        buffer_size: int = 100_000,
        batch_size: int = 1000,
        max_backoff_s: float = 5.0,
        cluster: bool = False,
    ) -> None:
        self._connect = _fail_fast_connector(redis_url, cluster)
        self._names = names
        self._taxonomy = taxonomy
        self._buffer: deque[Outgoing] = deque()
        self._buffer_size = buffer_size
        self._batch_size = batch_size
        # Redis unreachable: the next send waits up to 50 ms, doubling, at most max_backoff_s.
        self._backoff = Backoff(base_s=0.05, cap_s=max_backoff_s)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._idle = threading.Event()
        self.counters = ProducerCounters()
        self._spool_path = spool_path
        self._thread = threading.Thread(target=self._run, name="runbus-producer", daemon=True)
        self._thread.start()

    def publish(self, event: EventLike) -> bool:
        """Queue one event; False (and a counter) if it is invalid, the buffer full or we closed."""
        try:
            out = prepare_outgoing(event, self._taxonomy)
        except InvalidEvent as exc:
            self.counters.invalid += 1
            log.warning("event_rejected_client_side", errors=exc.errors)
            return False
        except Exception as exc:  # never raise into the caller's run, whatever it passed
            self.counters.invalid += 1
            log.warning("event_not_encodable", error=repr(exc))
            return False
        with self._lock:
            if self._stopping.is_set() or len(self._buffer) >= self._buffer_size:
                self.counters.dropped += 1
                return False
            self._buffer.append(out)
            self._idle.clear()
        self._wake.set()
        return True

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued reached Redis; False on timeout (the spool keeps it)."""
        self._wake.set()
        return self._idle.wait(timeout)

    def close(self, timeout: float = 10.0) -> bool:
        """Flush, then stop the sender. Unsent events stay in the spool for the next run."""
        delivered = self.flush(timeout)
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout + 5)
        return delivered

    @property
    def spool_depth(self) -> int:
        """Events waiting in the durable spool (approximate, read from the file)."""
        spool = Spool(self._spool_path)
        try:
            return len(spool)
        finally:
            spool.close()

    def _take(self) -> list[Outgoing]:
        with self._lock:
            n = min(len(self._buffer), self._batch_size)
            return [self._buffer.popleft() for _ in range(n)]

    def _run(self) -> None:
        spool = Spool(self._spool_path)
        sender = _Sender(self._connect, self._names, spool, self.counters, self._backoff)
        try:
            while True:
                self._wake.wait(sender.wait_hint())
                self._wake.clear()
                batch = self._take()
                while batch:
                    sender.offer(batch)
                    # Between batches too: when a spool append is slower than the caller's
                    # publishing, the buffer never empties and the spool would never drain.
                    sender.retry_spool()
                    batch = self._take()
                sender.retry_spool()
                with self._lock:  # publish() clears idle under this lock: no lost wake-up
                    if sender.drained() and not self._buffer:
                        self._idle.set()
                if self._stopping.is_set():
                    sender.spool_rest(self._take())
                    return
        finally:
            spool.close()
            sender.close()


def _fail_fast_connector(url: str, cluster: bool) -> Callable[[], redis.Redis]:
    """How the sender connects: no retries of redis-py's own (the sender spools and backs off)."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    options: dict[str, Any] = {
        "socket_connect_timeout": 1.0, "socket_timeout": 5.0, "retry": Retry(NoBackoff(), 0)
    }  # fmt: skip
    if not cluster:
        return lambda: redis.Redis.from_url(url, **options)
    # A cluster client reads the slot map when it is made, so it is made (and may fail) in
    # the sender's first send, not in the caller's thread.
    return lambda: cast(redis.Redis, redis.cluster.RedisCluster.from_url(url, **options))


class _Sender:
    """The best-effort sender's state machine: direct while Redis answers, spool otherwise."""

    def __init__(
        self,
        connect: Callable[[], redis.Redis],
        names: Names,
        spool: Spool,
        counters: ProducerCounters,
        backoff: Backoff,
    ) -> None:
        self._connect = connect
        self._client: redis.Redis | None = None
        self._names = names
        self._spool = spool
        self._counters = counters
        self._backoff = backoff
        self._spooled = len(spool) > 0
        self._failures = 0
        self._next_try = 0.0
        self._outage = OutageLog(log, "redis_unreachable_spooling", "redis_back_draining_spool")

    def wait_hint(self) -> float:
        """How long the thread may sleep before it must retry the spool."""
        if not self._spooled:
            return 0.5
        return max(0.01, min(0.5, self._next_try - time.monotonic()))

    def drained(self) -> bool:
        """True when nothing waits in the spool."""
        return not self._spooled

    def offer(self, batch: list[Outgoing]) -> None:
        """Send a batch, or spool it (always spool while older events wait there: order);
        of a batch Redis took in part (a full Redis refusing some XADDs), only the refused."""
        unsent = batch if self._spooled else self._send(batch)
        if unsent:
            self._spool.append([out.body for out in unsent])
            self._counters.spooled += len(unsent)
            self._spooled = True

    def spool_rest(self, batch: list[Outgoing]) -> None:
        """At close: keep whatever is left durable."""
        if batch:
            self._spool.append([out.body for out in batch])
            self._counters.spooled += len(batch)

    def close(self) -> None:
        """Close the client, if one was made."""
        if self._client is not None:
            self._client.close()

    def retry_spool(self) -> None:
        """Drain the spool in order while Redis answers, backing off when it does not."""
        while self._spooled and time.monotonic() >= self._next_try:
            rows = self._spool.head(1000)
            if not rows:
                self._spooled = False
                return
            # The spool keeps bodies only: each one is routed again by the run id inside it.
            unsent = self._send([Outgoing.of_body(body) for _, body in rows])
            if len(unsent) == len(rows):
                return
            # Redis took some (a full Redis refused the others): those taken leave the spool,
            # the refused go back at its tail, so none is sent twice and none is lost.
            self._spool.requeue(rows[-1][0], [out.body for out in unsent])
            if unsent:
                return

    def _send(self, batch: list[Outgoing]) -> list[Outgoing]:
        """One pipeline for the batch (one round trip on a node, one per master on a
        cluster); what Redis did not take: all of it when unreachable, the refused XADDs
        when it is full (``OOM``: its ``maxmemory`` reached)."""
        try:
            if self._client is None:
                self._client = self._connect()
            with self._client.pipeline(transaction=False) as pipe:
                _add_all(pipe, self._names, batch)
                replies = pipe.execute(raise_on_error=False)
        except (redis.RedisError, RedisClusterException, OSError) as exc:
            self._failed(exc)
            return batch
        refused = [(out, r) for out, r in zip(batch, replies, strict=True) if _error(r)]
        if refused:
            self._failed(refused[0][1])
        else:
            self._outage.up()
            self._failures = 0
        self._counters.published += len(batch) - len(refused)
        return [out for out, _ in refused]

    def _failed(self, exc: BaseException) -> None:
        self._next_try = time.monotonic() + self._backoff.delay(self._failures)
        self._failures += 1
        self._outage.down(exc)


def _error(reply: object) -> bool:
    return isinstance(reply, Exception)
