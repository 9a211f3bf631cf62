"""The flood: a misconfigured producer buries the bus in invalid events, into a Redis with a
``maxmemory``. Every entry ends in the history, the dead-letter stream or the archive, exactly
once; the dead-letter stream stays within its policy; Redis stays under its limit; each
service's memory stays flat.

The services run as processes (`runbus run <stage>`, `bench.services.ServiceGroup`) on a
private redis-server. `make test` runs a short flood (20,000 entries, ``maxmemory 32mb``);
``RUNBUS_FLOOD_FULL=1`` (`make test-flood`) the issue's: 500,000 entries, 90 % invalid,
``maxmemory 128mb``. The figures are printed (``-s``) for the performance page.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
import redis

from bench.services import RssSampler, ServiceGroup
from shared.names import Names
from shared.wire import DEAD_LETTERS
from tests.conftest import RedisServer

pytestmark = pytest.mark.integration

FULL = os.environ.get("RUNBUS_FLOOD_FULL") == "1"


@dataclass(frozen=True)
class Flood:
    entries: int
    maxmemory: int
    max_dead: int  #: RUNBUS_DEAD_LETTER_MAX_ENTRIES
    sweep_s: float = 1.0

    @property
    def valid(self) -> int:
        return self.entries // 10


FLOOD = (
    Flood(500_000, 128 * 1024 * 1024, 20_000)
    if FULL
    else Flood(int(os.environ.get("RUNBUS_FLOOD_ENTRIES", "20000")), 32 * 1024 * 1024, 2_000)
)
DEADLINE_S = 1800.0 if FULL else 240.0


def body(i: int, valid: bool) -> bytes:
    """Entry `i`: a valid BrewSLM event, or one with an unknown reason code (its id marks it)."""
    doc = {
        "project_id": 1 + i % 5, "run_id": f"flood-{i % 97}", "stage": "training",
        "severity": "error", "reason_code": "training_oom" if valid else "no_such_code",
        "summary": f"entry {i}", "ts": "2026-11-23T02:50:00Z", "event_id": f"flood-{i}",
    }  # fmt: skip
    return orjson.dumps(doc)


def publish(client: redis.Redis, stream: str, flood: Flood, watch: Callable[[], None]) -> int:
    """XADD every entry in pipelines of 1000; what a full Redis refuses is sent again after a
    pause (the refused, never the taken). Returns how many XADDs were refused on the way."""
    refused = 0
    pending = list(range(flood.entries))
    while pending:
        batch, pending = pending[:1000], pending[1000:]
        while batch:
            with client.pipeline(transaction=False) as pipe:
                for i in batch:
                    pipe.xadd(stream, {"__data__": body(i, i % 10 == 0)})
                replies = pipe.execute(raise_on_error=False)
            batch = [i for i, r in zip(batch, replies, strict=True) if isinstance(r, Exception)]
            refused += len(batch)
            watch()
            if batch:
                time.sleep(0.2)
    return refused


@dataclass
class Watch:
    """Peaks seen while the flood runs: Redis's memory, the dead-letter stream's length."""

    client: redis.Redis
    dead: str
    peak_memory: int = 0
    peak_dead: int = 0

    def __call__(self) -> None:
        self.peak_memory = max(self.peak_memory, int(self.client.info("memory")["used_memory"]))
        self.peak_dead = max(self.peak_dead, int(self.client.xlen(self.dead)))


def archive_count(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM dead_letter_archive").fetchone()[0])
    except sqlite3.OperationalError:  # not migrated yet
        return 0
    finally:
        conn.close()


def archived(db: Path) -> list[bytes]:
    """Every archived dead letter's original bytes."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [bytes(row[0]) for row in conn.execute("SELECT original FROM dead_letter_archive")]
    except sqlite3.OperationalError:  # not migrated yet
        return []
    finally:
        conn.close()


def stored(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM history").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


def drained(client: redis.Redis, names: Names) -> bool:
    for stream in (names.events, names.valid):
        for group in client.xinfo_groups(stream):
            if group["pending"] or group["lag"]:
                return False
    return True


def diagnose(client: redis.Redis, names: Names, db: Path, services: ServiceGroup) -> str:
    groups = {s: client.xinfo_groups(s) for s in (names.events, names.valid)}
    counts = (stored(db), archive_count(db), client.xlen(names.dead), client.xlen(names.events))
    tails = {name: services.log_tail(name, 5) for name in services.pids}
    return f"not drained: history, archive, dead, events = {counts}; {groups}; {tails}"


def test_a_flood_of_bad_events_is_bounded_and_loses_nothing(
    redis_server: Callable[..., RedisServer], tmp_path: Path, namespace: str
) -> None:
    flood = FLOOD
    server = redis_server()
    client = redis.Redis(port=server.port)
    client.config_set("maxmemory", flood.maxmemory)
    client.config_set("maxmemory-policy", "noeviction")
    names = Names(namespace)
    db = tmp_path / "history.db"
    services = ServiceGroup(namespace, f"sqlite:///{db}", tmp_path / "logs", redis_url=server.url)
    services.env.update(
        RUNBUS_DEAD_LETTER_MAX_ENTRIES=str(flood.max_dead),
        RUNBUS_DEAD_LETTER_SWEEP_INTERVAL_S=str(flood.sweep_s),
        RUNBUS_TRIM_INTERVAL_S="1",
    )
    watch = Watch(client, names.dead)
    with services:
        services.start()
        pids = dict(services.pids)
        rss = RssSampler(pids, interval=1.0).start()
        rss.sample()  # the services started, idle: the baseline
        began = time.monotonic()
        refused = publish(client, names.events, flood, watch)
        published_s = time.monotonic() - began
        rss.phase = "drain"
        deadline = began + DEADLINE_S
        while not (drained(client, names) and stored(db) == flood.valid and
                   client.xlen(names.dead) + archive_count(db) >= flood.entries - flood.valid
                   and client.xlen(names.dead) <= flood.max_dead):  # fmt: skip
            assert time.monotonic() < deadline, diagnose(client, names, db, services)
            watch()
            time.sleep(0.5)
        elapsed = time.monotonic() - began
        rss.stop()
    # (the services stopped: no sweep moves an entry between the two reads below)
    # every entry exactly once: the valid ones in the history, the invalid ones on the
    # dead-letter stream or in the archive
    assert stored(db) == flood.valid
    dead = [DEAD_LETTERS.raw(f, "original") for _, f in client.xrange(names.dead)]
    every = dead + archived(db)
    ids = {orjson.loads(original)["event_id"] for original in every}
    assert len(every) == len(ids) == flood.entries - flood.valid
    assert ids == {f"flood-{i}" for i in range(flood.entries) if i % 10}
    # bounded: the dead-letter stream within its policy (give or take one sweep), Redis under
    # its limit (a move that started below it may finish a little above)
    assert client.xlen(names.dead) <= flood.max_dead
    if FULL:  # the flood: within its policy all along (the short one's 2,000 cannot
        # be held at ~10,000 dead letters a second: more arrive between two looks)
        assert watch.peak_dead <= flood.max_dead, watch.peak_dead
    assert watch.peak_memory <= flood.maxmemory * 1.05
    # flat: no service's anonymous memory kept growing through the flood
    report = {"entries": flood.entries, "refused_xadds": refused, "published_s": published_s}
    report |= {"elapsed_s": round(elapsed, 1), "entries_per_s": round(flood.entries / elapsed)}
    report |= {"peak_redis_mb": round(watch.peak_memory / 2**20, 1), "peak_dead": watch.peak_dead}
    for service in pids:
        early = max([a for _, _, a in rss.series_mb(service, "start")][:10], default=0.0)
        peak = rss.peak_mb(service, anon=True) or 0.0
        report[f"{service}_rss_anon_mb"] = f"{early} -> peak {peak}"
        # the first seconds hold the start-up and the first full batches; after that, flat
        assert peak <= early + 100, f"{service}: anonymous RSS {early} -> {peak} MB"
    print("flood:", report)
    client.close()
