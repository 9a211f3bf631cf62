"""The end-to-end proof: the system started the way `make run` starts it (real processes),
a few thousand entries published with plain XADD, every one accounted for exactly once, the
coach API serving what the events imply, and a clean stop with nothing left pending."""

from __future__ import annotations

import os
import signal
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from shared.names import COACH_GROUP, PERSISTER_GROUP, VALIDATOR_GROUP, Names
from shared.settings import Settings
from tests.conftest import free_port
from tests.integration.e2e.helpers import (
    System,
    Workload,
    build_workload,
    dead_source_ids,
    history_event_ids,
    poll,
    suggestion_titles,
    xadd_all,
)

pytestmark = pytest.mark.integration


def every_entry_accounted_for(
    system: System, client: redis.Redis, names: Names, w: Workload, entry_ids: list[str]
) -> None:
    """Poll until every valid event is in the history and every invalid entry dead-lettered."""
    expected_events = {eid for eid, ok in zip(w.event_ids, w.valid, strict=True) if ok}
    expected_dead = {i for i, ok in zip(entry_ids, w.valid, strict=True) if not ok}

    def done() -> bool:
        return (
            set(history_event_ids(system.http, w)) >= expected_events
            and set(dead_source_ids(client, names.dead)) >= expected_dead
        )

    poll(done, timeout=45)
    # exactly once: no event twice in the history, no entry twice on the dead-letter stream,
    # nothing valid dead-lettered, nothing invalid stored
    stored = Counter(history_event_ids(system.http, w))
    assert set(stored) == expected_events
    assert max(stored.values()) == 1
    dead = Counter(dead_source_ids(client, names.dead))
    assert set(dead) == expected_dead and max(dead.values()) == 1


def coach_serves_the_expected_suggestions(system: System) -> None:
    """Project 1 is told about its OOM and thin gold set; project 2 about neither."""

    def project_one_advised() -> bool:
        training = suggestion_titles(system.http, 1, "training")
        gold = suggestion_titles(system.http, 1, "gold_set")
        return "Training ran out of GPU memory" in training and gold == [
            "Your gold set has 78 rows"
        ]

    poll(project_one_advised, timeout=20)
    # the success of project 2 was published before its OOM but happened after it
    assert not any("GPU memory" in t for t in suggestion_titles(system.http, 2, "training"))
    assert suggestion_titles(system.http, 2, "gold_set") == []


def nothing_pending(client: redis.Redis, settings: Settings) -> None:
    names = settings.names
    for stream, group in ((names.events, VALIDATOR_GROUP), (names.valid, PERSISTER_GROUP),
                          (names.valid, COACH_GROUP)):  # fmt: skip
        assert client.xpending(stream, group)["pending"] == 0, (stream, group)


def story(system: System, client: redis.Redis, settings: Settings, *, kill: str | None) -> None:
    # given the system, started the way `make run` starts it, ready
    poll(system.ready, timeout=60)
    # when a few thousand entries are published with plain XADD (valid, invalid, duplicates)
    w = build_workload()
    entry_ids = xadd_all(client, settings.names.events, w)
    assert len(entry_ids) > 3000
    if kill is not None:  # and a service process is killed outright on the way
        os.kill(system.children()[kill], signal.SIGKILL)
    # then every entry ends in exactly one place, once
    every_entry_accounted_for(system, client, settings.names, w, entry_ids)
    # and the coach API serves what the events imply
    coach_serves_the_expected_suggestions(system)
    # and metrics agree with the streams
    metrics = system.http.get("/metrics").text
    assert f"runbus_events_accepted_total {float(sum(w.valid))}" in metrics
    # when the system is stopped like Ctrl-C / docker stop does, it exits 0
    assert system.stop() == 0, system.output()[-3000:]


def test_end_to_end_on_a_fresh_machine_with_sqlite(
    start_system: Callable[..., System], settings: Settings, tmp_path: Path
) -> None:
    """`make run` where no Redis answers: runbus starts one (AOF on), SQLite history."""
    port, redis_dir = free_port(), tmp_path / "redis"
    url = f"redis://127.0.0.1:{port}/0"
    system = start_system(settings.database_url, "--redis-dir", str(redis_dir), redis_url=url)
    client = redis.Redis.from_url(url)
    story(system, client, settings, kill="persister")
    assert "child_exited_restarting" in system.output()  # the killed persister came back
    # the Redis it started is stopped after the services drained...
    with pytest.raises(redis.ConnectionError):
        client.ping()
    # ...and, restarted from its append-only files, has every entry acknowledged
    restarted = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(redis_dir),
         "--appendonly", "yes", "--save", ""],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        poll(lambda: _answers(client), timeout=15)
        assert client.xlen(settings.names.dead) > 0
        nothing_pending(client, settings)
    finally:
        restarted.terminate()
        restarted.wait(15)
        client.close()


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def test_end_to_end_on_postgresql(
    start_system: Callable[..., System],
    sync_client: redis.Redis,
    settings: Settings,
    pg_schema_url: str,
) -> None:
    """The machine's Redis, the history on a PostgreSQL schema of its own."""
    system = start_system(pg_schema_url)
    story(system, sync_client, settings, kill=None)
    nothing_pending(sync_client, settings)
