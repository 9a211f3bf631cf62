"""Story: a best-effort producer's spool, drained after an outage, puts each run on its partition.

The spool keeps encoded bodies only, so the drain routes each one again by the run id inside
it; a private single-node redis-server (P=4) is started only after the events were spooled.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from shared.names import Names
from shared.producer import BestEffortProducer
from shared.settings import Settings
from tests.conftest import RedisServer, wait_for
from tests.integration.producer.helpers import stream_docs
from tests.unit.contract.events import pulse

pytestmark = pytest.mark.integration

RUNS = [f"run-{i}" for i in range(25)]


def events_of_many_runs() -> list[dict[str, Any]]:
    """Four events of every run, interleaved, numbered per run in details.seq."""
    return [pulse(run_id=run, details={"seq": seq}) for seq in range(4) for run in RUNS]


def test_a_spool_drained_after_an_outage_puts_each_event_on_its_runs_partition(
    settings: Settings, redis_server: Callable[..., RedisServer], tmp_path: Path
) -> None:
    # given four partitions and a producer whose Redis is not running yet
    names = Names(settings.namespace, 4)
    server = redis_server(start=False)
    producer = BestEffortProducer(
        server.url, names, tmp_path / "spool.db", settings.taxonomy, max_backoff_s=0.1
    )
    try:
        # when events of many runs are published while Redis is down
        assert all(producer.publish(e) for e in events_of_many_runs())
        wait_for(lambda: producer.counters.spooled == 100)
        assert producer.counters.published == 0
        # and Redis comes back
        server.start()
        assert producer.flush(timeout=20)
    finally:
        producer.close(timeout=1)
    # then the spool drained completely, every event on its run's partition, in order per run
    assert (producer.counters.published, producer.spool_depth) == (100, 0)
    client = redis.Redis.from_url(server.url)
    found: dict[str, list[tuple[int, int]]] = {}
    for partition in names.all_partitions:
        for doc in stream_docs(client, partition.events):
            found.setdefault(doc["run_id"], []).append((partition.index, doc["details"]["seq"]))
    assert sorted(found) == sorted(RUNS)
    for run, entries in found.items():
        assert entries == [(names.partition_for(run).index, seq) for seq in range(4)], run
    assert len({index for entries in found.values() for index, _ in entries}) == 4
