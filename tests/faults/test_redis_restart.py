"""Fault 2: Redis itself crashes (SIGKILL) and restarts from its AOF under load.

A private redis-server (``--appendonly yes --appendfsync always``), never the machine's. The
producer is the real `BestEffortProducer`: while Redis is down it spools to SQLite, and drains
the spool in order once Redis is back. The services reconnect by themselves.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from shared.producer import BestEffortProducer
from tests.conftest import wait_for
from tests.faults.conftest import MakeSystem, Sizes
from tests.faults.conservation import Figures, conclude
from tests.faults.load import EventMix, SteadyProducer, best_effort_publisher
from tests.faults.system import PrivateRedis

pytestmark = pytest.mark.integration


def test_redis_crash_and_restart_with_aof_loses_nothing(
    make_system: MakeSystem, private_redis: PrivateRedis, tmp_path: Path, sizes: Sizes, tag: str
) -> None:
    # given the pipeline on a private Redis with AOF (fsync always), SQLite history, and a
    # best-effort producer with its spool; entries are kept on the streams (no trim by age) so
    # the producer's resent copies can be counted
    db = f"sqlite:///{tmp_path / 'history.db'}"
    system = make_system(db, redis_url=private_redis.url, RUNBUS_STREAM_MIN_AGE_S="86400")
    for service in ("validator", "persister", "coach"):
        system.start(service)
    client = BestEffortProducer(private_redis.url, system.names, tmp_path / "spool.db")
    mix = EventMix(tag, broken_json=False)  # the client takes documents, not raw bytes
    producer = SteadyProducer(mix, best_effort_publisher(client), rate=sizes.rate).start()
    system.wait_caught_up(timeout=60)
    figures = Figures("redis crash + AOF restart", sizes.variant)
    recover: list[float] = []
    # when Redis is SIGKILLed, stays down a while, and is started again on its AOF
    for _ in range(sizes.redis_restarts):
        spooled = client.counters.spooled
        private_redis.crash()
        threading.Event().wait(sizes.redis_down_s)  # the outage itself, not a synchronisation
        assert client.counters.spooled > spooled, "the producer did not spool during the outage"
        private_redis.start()
        began = time.monotonic()
        wait_for(lambda: client.flush(0.05), timeout=60)  # the spool drained into Redis
        recover.append(time.monotonic() - began + system.wait_caught_up(timeout=90))
        system.assert_alive()
    producer.stop()
    # then the producer delivered everything it took, dropped nothing ...
    assert client.close(timeout=60), "the producer could not drain its spool"
    assert client.counters.dropped == 0 and not producer.failures, producer.failures[:3]
    figures.recover_s = max(recover)
    figures.details |= {
        "restarts": len(recover), "down_s": sizes.redis_down_s, "rate": round(producer.rate),
        "spooled": client.counters.spooled, "published": client.counters.published,
    }  # fmt: skip
    # ... and every event is stored or dead-lettered exactly once, coach == rebuild
    conclude(system, producer.offered, figures, db)
