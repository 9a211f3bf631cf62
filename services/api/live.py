"""`LiveHub`: the live updates of the dashboard, read once per API process and fanned out.

Whatever the number of open pages, one API process does the same Redis work: one pub/sub
subscription to the coach's change channel, one follower of the dead-letter streams (a blocking
XREAD per partition, from the newest entry), one status sampler. Each page holds a
`services.api.fanout.Subscription`; the loops publish to their topic without ever awaiting a
client, so a slow page loses only its own oldest items (and gets a `Resync`).

- The coach loop always runs: besides the pages, it feeds `versions` (`VersionMap`, the latest
  version of each coach document), which answers a dashboard's 304 without a Redis call. The
  dead-letter loop starts with its topic's first subscriber and stops with its last, so an API
  nobody watches sends no XREAD.
- The sampler always runs (every ``RUNBUS_UI_SAMPLE_S``): a page's first render shows the last
  10 minutes of throughput, which a sampler started by that page could not have. Its cost is a
  few XINFO calls and one pipelined HGETALL per stage per round, independent of the pages.
- A loop that loses Redis retries with `shared.retry.Backoff` and never ends the API. Pub/sub
  drops what is published while disconnected, so after the coach loop (or redis-py under it)
  subscribes again, its subscribers get ``Resync("reconnected")`` and re-fetch, and the version
  map, which forgot everything when the subscription failed, starts again empty. The dead-letter
  follower resumes from the last id it saw (`follow_dead_letters`): nothing is missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Final, Literal

import redis.asyncio as aredis
from pydantic import ValidationError
from redis.exceptions import RedisError

from services.api.fanout import Resync, Subscription, Topic
from services.api.samples import Counted, StatusSample, build_sample, down_sample
from services.api.versions import VersionMap
from services.ops.deadletters import follow_dead_letters, newest_positions
from services.ops.logic import now_utc
from services.ops.models import DeadLetterRecord
from services.ops.status import bus_status
from services.ops.stream_ids import parse_dead_letter_id
from shared.logging import get_logger
from shared.metrics import read_stage_metrics
from shared.models import CoachChange
from shared.pipeline import PIPELINE
from shared.retry import Backoff, OutageLog
from shared.settings import Settings

log = get_logger("runbus.api.live")

TopicName = Literal["coach", "dead_letters", "status"]
TOPICS: Final[tuple[TopicName, ...]] = ("coach", "dead_letters", "status")
#: How much history the sampler's ring keeps (s).
RING_S: Final = 600.0
#: A loop that failed waits up to 0.2 s, doubling, at most 5 s, before it tries again.
RETRY: Final = Backoff(base_s=0.2, cap_s=5.0)
#: Longest wait of one pub/sub read (s) and of one dead-letter XREAD BLOCK (ms): an idle API
#: sends one XREAD per partition this often. The block stays well under redis-py's default
#: socket timeout (5 s), which would otherwise cut every idle XREAD and reconnect.
LISTEN_S: Final = 5.0
FOLLOW_BLOCK_MS: Final = 2000


class LiveHub:
    """The live sources of one API process (open with `start`, end with `close`)."""

    def __init__(self, settings: Settings, client: aredis.Redis) -> None:
        self._settings = settings
        self._client = client
        self._names = settings.names
        self._tasks: dict[TopicName, asyncio.Task[None]] = {}
        self._stopping: set[asyncio.Task[None]] = set()
        self._listening = {name: asyncio.Event() for name in TOPICS}
        self._coach: Topic[CoachChange] = Topic("coach")
        self.versions = VersionMap()
        """The coach documents' latest versions, while the change channel is heard."""
        self.versions.connected = _never  # until a subscription's connection is watched
        self._dead: Topic[DeadLetterRecord] = Topic(
            "dead_letters",
            lambda: self._run("dead_letters", self._dead_loop),
            lambda: self._stop("dead_letters"),
        )
        self._status: Topic[StatusSample] = Topic("status")
        self._ring: deque[StatusSample] = deque(maxlen=max(1, math.ceil(RING_S / self.sample_s)))

    @property
    def sample_s(self) -> float:
        """Seconds between two status samples (``RUNBUS_UI_SAMPLE_S``)."""
        return self._settings.ui_sample_s

    # --- what pages use -----------------------------------------------------------------

    def coach(self, project_id: int | None = None) -> Subscription[CoachChange]:
        """Changes of one project's coach documents (every project's when None), and
        ``Resync("reconnected")`` after an outage of the change channel."""
        if project_id is None:
            return self._coach.subscribe()
        return self._coach.subscribe(lambda change: change.project_id == project_id)

    def dead_letters(self) -> Subscription[DeadLetterRecord]:
        """Every dead letter written from now on, any partition (filter them yourself)."""
        return self._dead.subscribe()

    def status(self) -> Subscription[StatusSample]:
        """Each new status sample, with its full `BusStatus` (`StatusSample.status`)."""
        return self._status.subscribe()

    def samples(self) -> list[StatusSample]:
        """The last 10 minutes of samples, oldest first; only the newest carries `status`."""
        return list(self._ring)

    def latest(self) -> StatusSample | None:
        """The newest sample (None before the first)."""
        return self._ring[-1] if self._ring else None

    def subscribers(self) -> dict[str, int]:
        """Open subscriptions by topic (for ``GET /metrics``)."""
        return {topic.name: len(topic) for topic in (self._coach, self._dead, self._status)}

    async def listening(self, topic: TopicName, timeout: float) -> bool:
        """Wait until `topic`'s loop listens (subscribed, positioned, or sampled once)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listening[topic].wait(), timeout)
        return self._listening[topic].is_set()

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Start the sampler and the coach loop (the dead-letter loop starts with its first
        subscriber)."""
        self._run("status", self._sample_loop)
        self._run("coach", self._coach_loop)

    def shutdown(self) -> None:
        """End every subscription (their streams finish) and refuse new ones; loops go on."""
        for topic in (self._coach, self._dead, self._status):
            topic.close()

    async def close(self) -> None:
        """`shutdown`, then stop every loop (and wait until each has)."""
        self.shutdown()
        for name in list(self._tasks):
            self._stop(name)
        while self._stopping:
            task = next(iter(self._stopping))
            # A cancel can be lost in redis-py's read timeouts (Python 3.11's asyncio.timeout):
            # ask again until the task has ended.
            task.cancel()
            await asyncio.wait({task}, timeout=0.5)

    def _run(self, name: TopicName, loop: Callable[[], Coroutine[Any, Any, None]]) -> None:
        if name not in self._tasks:
            self._tasks[name] = asyncio.get_running_loop().create_task(loop(), name=f"live-{name}")

    def _stop(self, name: TopicName) -> None:
        task = self._tasks.pop(name, None)
        if task is not None:
            task.cancel()
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)
        self._listening[name].clear()

    def _owns(self, name: TopicName) -> bool:
        """True while the running task is `name`'s loop: a stopped loop whose cancel was lost
        ends at its next round instead of running on unseen."""
        return self._tasks.get(name) is asyncio.current_task()

    # --- the loops ------------------------------------------------------------------------

    async def _coach_loop(self) -> None:
        """One SUBSCRIBE, listened to until it fails, then again after a backoff."""
        channel = _Channel(OutageLog(log, "live_coach_channel_down", "live_coach_channel_up"))
        while self._owns("coach"):
            try:
                await self._listen(channel)
            except (RedisError, OSError) as exc:
                channel.outage.down(exc)
            except Exception:  # a bug must not end live updates for good
                log.exception("live_coach_loop_failed")
            if not self._owns("coach"):
                return
            self._listening["coach"].clear()
            channel.gap = True
            await asyncio.sleep(RETRY.delay(channel.failures))
            channel.failures += 1

    async def _listen(self, channel: _Channel) -> None:
        pubsub = self._client.pubsub()
        try:
            await pubsub.subscribe(self._names.coach_changes)
            self._watch(pubsub)
            while self._owns("coach"):
                message = await pubsub.get_message(timeout=LISTEN_S)
                if message is not None:
                    self._on_pubsub(message, channel)
        finally:
            self.versions.lost()  # before any await: nothing is heard from here on
            self.versions.connected = _never
            if pubsub.connection is not None:  # it goes back to the pool: no callback of ours
                pubsub.connection.deregister_connect_callback(self._reconnected)
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _watch(self, pubsub: Any) -> None:
        """Tie the version map to the subscription's connection: trusted only while it is
        open, forgotten whenever redis-py connects it again (before it resubscribes)."""
        conn = pubsub.connection
        if conn is None:  # nothing to watch: the map is never believed
            return
        self.versions.connected = lambda: bool(conn.is_connected)
        conn.register_connect_callback(self._reconnected)

    def _reconnected(self, _conn: object) -> None:
        self.versions.lost()

    def _on_pubsub(self, message: dict[str, Any], channel: _Channel) -> None:
        """A change is published; a subscribe confirmation after the first one, or after a
        failure, means redis-py or this loop reconnected: changes may have been lost."""
        if message["type"] == "message":
            self._coach_message(message["data"])
        elif message["type"] == "subscribe":
            self.versions.subscribed()
            if channel.confirmed or channel.gap:
                self._coach.publish(Resync("reconnected"))
            channel.confirmed, channel.gap, channel.failures = True, False, 0
            channel.outage.up()
            self._listening["coach"].set()

    def _coach_message(self, data: bytes | str) -> None:
        try:
            change = CoachChange.model_validate_json(data)
        except ValidationError:
            log.warning("live_coach_change_unreadable", data=repr(data)[:200])
            return
        self.versions.changed(change.project_id, change.stage, change.version)
        self._coach.publish(change)

    async def _dead_loop(self) -> None:
        """`_follow` from each partition's newest entry; after an error it does not retry
        itself, again from the last id it yielded."""
        outage = OutageLog(log, "live_dead_letters_down", "live_dead_letters_up")
        positions: dict[int, str] | None = None
        failures = 0
        while self._owns("dead_letters"):
            try:
                if positions is None:
                    positions = await newest_positions(self._client, self._names)
                self._listening["dead_letters"].set()
                failures = await self._follow(positions, outage, failures)
            except (RedisError, OSError) as exc:
                outage.down(exc)
            except Exception:  # a bug must not end live updates for good
                log.exception("live_dead_letters_loop_failed")
            if not self._owns("dead_letters"):
                return
            self._listening["dead_letters"].clear()
            await asyncio.sleep(RETRY.delay(failures))
            failures += 1

    async def _follow(self, positions: dict[int, str], outage: OutageLog, failures: int) -> int:
        """Publish dead letters as `follow_dead_letters` yields them (it waits out outages),
        keeping `positions`; returns the failure count to go on with."""
        async for record in follow_dead_letters(
            self._client,
            self._names,
            after_id=None,
            positions=positions,
            stop=lambda: not self._owns("dead_letters"),
            block_ms=FOLLOW_BLOCK_MS,
            on_outage=outage.down,
        ):
            outage.up()
            failures = 0
            parsed = parse_dead_letter_id(record.id)
            positions[parsed.partition or 0] = parsed.entry
            self._dead.publish(record)
        return failures

    async def _sample_loop(self) -> None:
        """One sample every `sample_s` (slower, with backoff, while Redis is down)."""
        previous: Counted | None = None
        slow = Backoff(base_s=self.sample_s, cap_s=max(self.sample_s, RETRY.cap_s))
        failures = 0
        while self._owns("status"):
            try:
                sample, previous = await self._sample(previous)
                failures = 0
            except (RedisError, OSError) as exc:
                sample = down_sample(now_utc(), str(exc) or type(exc).__name__)
                failures += 1
            except Exception as exc:  # a bug must not end live updates for good
                log.exception("live_sampler_failed")
                sample = down_sample(now_utc(), repr(exc))
                failures += 1
            self._keep(sample)
            self._listening["status"].set()
            wait = self.sample_s if not failures else max(self.sample_s, slow.delay(failures))
            await asyncio.sleep(wait)

    async def _sample(self, previous: Counted | None) -> tuple[StatusSample, Counted]:
        status = await bus_status(self._client, self._names)
        metrics = await read_stage_metrics(self._client, self._names, PIPELINE.stage_names)
        return build_sample(status, metrics, previous)

    def _keep(self, sample: StatusSample) -> None:
        """Append to the ring (the previous newest loses its full status) and publish."""
        if self._ring:
            self._ring[-1] = self._ring[-1].model_copy(update={"status": None})
        self._ring.append(sample)
        self._status.publish(sample)


def _never() -> bool:
    return False


@dataclass
class _Channel:
    """The coach loop's view of its subscription across reconnects."""

    outage: OutageLog
    confirmed: bool = False  # a subscribe confirmation was heard
    gap: bool = False  # the subscription failed since the last confirmation
    failures: int = 0
