"""A bus under load on a cluster that changes under it: steady producer, the three stages, the law.

`SteadyLoad` publishes valid events of four coach projects and, now and then, an invalid one,
through a `BestEffortProducer` on the cluster (at-least-once: after a failover it may send an
event again, so everything is counted by event id). `running_stages` runs the validator,
persister and coach in this process until the block ends (a stage that dies fails the test).
`check_conservation` is the law: every valid event id in the history exactly once, every
invalid one dead-lettered with its code and nothing else dead-lettered, nothing pending in any
group, the coach cache equal to a rebuild from the history. `first_persisted_after` measures a
recovery: when the first event published after a fault, on a partition it hit, reached the
history.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import redis
from redis.cluster import RedisCluster
from redis.crc import key_slot

from services.coach import logic
from services.coach.app import run_coach
from services.coach.io import CoachStore
from services.coach.rebuild import rebuild
from services.history import open_store
from services.persister.app import run_persister
from services.validator.app import run_validator
from shared.connections import async_redis
from shared.models import COACH_STAGES, CoachDocument
from shared.names import Names
from shared.pipeline import PIPELINE
from shared.producer import BestEffortProducer
from shared.settings import Settings
from shared.wire import parse_dead_letter
from tests.cluster import RedisClusterFixture
from tests.conftest import wait_for
from tests.integration.cluster.workers import pending
from tests.unit.coach.builders import event

PROJECTS = (1, 2, 3, 4)
#: One event in this many is invalid (an unknown stage): the validator dead-letters it.
INVALID_EVERY = 25
INVALID_CODE = "invalid_stage:nope"
REASONS = ("training_oom", None, "annotation_rows_promoted", "dataset_import_run")
PAYLOADS: dict[str | None, dict[str, Any]] = {
    "training_oom": {"batch_size": 32},
    None: {"status": "completed", "batch_size": 16},
    "annotation_rows_promoted": {"target": "gold_set", "rows": 10},
    "dataset_import_run": {"accepted": 100, "rejected": 70, "source": "s3://b/x"},
}


def document(seq: int) -> dict[str, Any]:
    """Event number `seq`: valid (a coach fact of one of four projects) or, 1 in 25, invalid."""
    run_id = f"run-{seq % 48}"  # 48 runs: every one of 12 partitions gets some
    if seq % INVALID_EVERY == 0:
        return {"event_id": f"x{seq:06d}", "project_id": 1, "run_id": run_id, "stage": "nope",
                "severity": "info", "ts": "2026-05-01T12:00:00Z"}  # fmt: skip
    reason = REASONS[seq % len(REASONS)]
    project = PROJECTS[(seq // len(REASONS)) % len(PROJECTS)]
    ev = event(reason, t=seq, project=project, payload=PAYLOADS[reason], run_id=run_id,
               event_id=f"v{seq:06d}", **({} if reason else {"stage": "training"}))  # fmt: skip
    return ev.model_dump(mode="json")


@dataclass
class SteadyLoad:
    """A thread publishing one event every `interval_s` until stopped; remembers what it sent."""

    settings: Settings
    spool: Path
    interval_s: float = 0.004
    sent: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.producer = BestEffortProducer(
            self.settings.redis_url, self.settings.names, self.spool, cluster=True
        )
        self._thread = threading.Thread(target=self._run, name="steady-load", daemon=True)

    def start(self) -> None:
        """Start publishing."""
        self._thread.start()

    def _run(self) -> None:
        seq = 0
        while not self._stop.wait(self.interval_s):
            seq += 1
            doc = document(seq)
            self.sent.append((time.monotonic(), doc))
            assert self.producer.publish(doc), "the producer refused an event"

    @property
    def count(self) -> int:
        """How many events were published so far."""
        return len(self.sent)

    def stop(self) -> None:
        """Stop publishing and flush the producer (its spool included)."""
        self._stop.set()
        self._thread.join(10)
        assert self.producer.close(60), "the producer could not deliver everything"

    def ids(self, valid: bool) -> set[str]:
        """Event ids published, valid or invalid ones."""
        prefix = "v" if valid else "x"
        return {d["event_id"] for _, d in self.sent if d["event_id"].startswith(prefix)}


def wait_replicas_synced(cluster: RedisClusterFixture, timeout: float = 30.0) -> None:
    """Until every replica finished its first sync: one that never did cannot take over.

    ``cluster-node-timeout`` makes a failover quick, but a replica is elected only with data:
    its first (diskless) sync starts ``repl-diskless-sync-delay`` (5 s) after the cluster was
    created, so a master killed sooner leaves its slots unserved for good.
    """
    wait_for(lambda: all(_synced(node.client()) for node in cluster.nodes if node.proc), timeout)


def _synced(node: redis.Redis) -> bool:
    info = node.info("replication")
    if info["role"] != "slave":
        return True
    return info.get("master_link_status") == "up" and not info.get("master_sync_in_progress")


def partitions_on(cluster: RedisClusterFixture, names: Names, port: int) -> set[int]:
    """The partitions whose slot the master on `port` serves."""
    return {
        p.index for p in names.all_partitions
        if cluster.node_of_slot(key_slot(p.events.encode())) == port
    }  # fmt: skip


StageRun = Callable[[Settings, asyncio.Event], Coroutine[Any, Any, Any]]
STAGES: dict[str, StageRun] = {
    "validator": run_validator, "persister": run_persister, "coach": run_coach
}  # fmt: skip


@contextlib.asynccontextmanager
async def running_stages(settings: Settings) -> AsyncIterator[Callable[[], None]]:
    """Run every `PIPELINE` stage in this process; yields a check that none of them died."""
    stop = asyncio.Event()
    tasks = {name: asyncio.create_task(STAGES[name](settings, stop)) for name in STAGES}
    assert set(STAGES) == set(PIPELINE.stage_names)

    def alive() -> None:
        for name, task in tasks.items():
            if task.done():
                raise AssertionError(f"the {name} stopped: {task.exception()!r}")

    try:
        yield alive
    finally:
        stop.set()
        await asyncio.gather(*tasks.values())


def history_ids(settings: Settings) -> Counter[str]:
    """Rows per event id in the SQLite history (read directly: polled often)."""
    path = settings.database_url.removeprefix("sqlite:///")
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=5)) as db:
            return Counter(row[0] for row in db.execute("SELECT event_id FROM history"))
    except sqlite3.OperationalError:  # not migrated yet
        return Counter()


def first_persisted_after(
    load: SteadyLoad, settings: Settings, since: float, hit: set[int]
) -> float | None:
    """When (monotonic) the first event published after `since` on a `hit` partition was
    persisted: None while none is. Polled, so the time is that of the poll that saw it."""
    names, stored = settings.names, history_ids(settings)
    for at, doc in list(load.sent):
        hits = at > since and names.partition_for(doc["run_id"]).index in hit
        if hits and doc["event_id"] in stored:
            return time.monotonic()
    return None


async def wait_recovered(
    load: SteadyLoad, settings: Settings, since: float, hit: set[int], alive: Callable[[], None]
) -> float:
    """Seconds from `since` until an event published after it on a `hit` partition is stored."""
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        alive()
        seen = first_persisted_after(load, settings, since, hit)
        if seen is not None:
            return seen - since
        await asyncio.sleep(0.1)
    raise AssertionError("no event of the partitions hit was persisted within 45 s")


async def wait_published(load: SteadyLoad, count: int, alive: Callable[[], None]) -> None:
    """Until the producer published `count` events (the stages checked alive meanwhile)."""
    deadline = time.monotonic() + 30
    while load.count < count:
        alive()
        assert time.monotonic() < deadline, "the producer stalled"
        await asyncio.sleep(0.05)


def quiescent(client: RedisCluster, settings: Settings, load: SteadyLoad) -> bool:
    """Every valid event stored; every group read its whole stream and holds nothing pending."""
    if not load.ids(valid=True) <= set(history_ids(settings)):
        return False
    return all(
        caught_up(client, p.stream(stage.reads), stage.group)
        for p in settings.names.all_partitions for stage in PIPELINE.stages
    )  # fmt: skip


def caught_up(client: RedisCluster, stream: str, group: str) -> bool:
    """`group` was delivered `stream`'s last entry and acknowledged everything delivered.

    Nothing pending alone is not enough: a group that lags behind (the coach, after an outage)
    holds nothing pending either.
    """
    last = client.xinfo_stream(stream)["last-generated-id"]
    groups = {g["name"].decode(): g for g in client.xinfo_groups(stream)}
    return (
        group in groups
        and groups[group]["last-delivered-id"] == last
        and (pending(client, stream, group) == 0)
    )


async def wait_quiescent(
    client: RedisCluster, settings: Settings, load: SteadyLoad, alive: Callable[[], None]
) -> None:
    """Until `quiescent` (at most 45 s)."""
    deadline = time.monotonic() + 45
    while not quiescent(client, settings, load):
        alive()
        assert time.monotonic() < deadline, "the bus did not drain within 45 s"
        await asyncio.sleep(0.1)


def check_history_and_dead_letters(
    client: RedisCluster, settings: Settings, load: SteadyLoad
) -> None:
    """0 lost, 0 duplicated, every dead letter one of the invalid events, each of those dead."""
    stored = history_ids(settings)
    assert set(stored) == load.ids(valid=True), "lost or unexpected events in the history"
    assert max(stored.values()) == 1, "an event is in the history twice"
    dead: dict[str, tuple[str, ...]] = {}
    for p in settings.names.all_partitions:
        for _, fields in client.xrange(p.dead):
            letter = parse_dead_letter(fields)
            event_id = _event_id(letter.original)
            assert letter.errors == [INVALID_CODE], (event_id, letter.errors)
            dead[event_id] = tuple(letter.errors)
    assert set(dead) == load.ids(valid=False), "an invalid event was not dead-lettered"
    for stage in PIPELINE.stages:
        for p in settings.names.all_partitions:
            assert pending(client, p.stream(stage.reads), stage.group) == 0


def _event_id(original: bytes) -> str:
    return str(orjson.loads(original)["event_id"])


def live_settings(cluster: RedisClusterFixture, settings: Settings) -> Settings:
    """`settings` with the URL of a live master: a cluster client starts from that one node."""
    port = min(cluster.masters())
    return settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{port}/0"})


async def check_coach_equals_rebuild(settings: Settings) -> None:
    """The coach cache of every project equals a rebuild from the history into another
    namespace."""
    fresh = settings.model_copy(update={"namespace": settings.namespace + "r"})
    history = open_store(settings)
    await history.open()
    client, other = async_redis(settings), async_redis(fresh)
    try:
        report = await rebuild(
            CoachStore(other, fresh.names), fresh.taxonomy.version, history.iter_events(None)
        )
        assert report.projects == set(PROJECTS)
        for project in PROJECTS:
            mine = await _state(client, settings.names, project)
            theirs = await _state(other, fresh.names, project)
            assert mine == theirs, f"project {project}: the coach state differs from the " + (
                f"rebuild: {_differences(mine, theirs)}"
            )
            for stage in COACH_STAGES:
                assert await _suggestions(client, settings.names, project, stage) == (
                    await _suggestions(other, fresh.names, project, stage)
                ), f"project {project} {stage}: suggestions differ from the rebuild"
    finally:
        await history.close()
        await client.aclose()
        await other.aclose()


def _differences(mine: dict[bytes, bytes], theirs: dict[bytes, bytes]) -> list[str]:
    return [
        f"{key!r}: cache {mine.get(key)!r}, rebuild {theirs.get(key)!r}"
        for key in sorted(mine.keys() | theirs.keys())
        if mine.get(key) != theirs.get(key)
    ]


async def _state(client: Any, names: Names, project: int) -> dict[bytes, bytes]:
    return dict(await client.hgetall(names.coach_state(project)))


async def _suggestions(client: Any, names: Names, project: int, stage: str) -> bytes | None:
    raw = await client.get(names.coach_key(project, stage))
    if raw is None:
        return None
    return logic.canonical(CoachDocument.model_validate_json(raw).suggestions)
