"""Regression: a steady publisher must not starve the draining of the producer's spool.

Found by the Redis-restart fault test on a loaded machine: after Redis came back, the
`BestEffortProducer` kept appending each new batch to its spool for ~30 s and sent nothing.
Its sender thread looped "take a batch, spool it" until the buffer was empty, and only then
tried to drain the spool; when a spool append (an fsync'd SQLite transaction) takes longer
than the gap between two publishes, the buffer is never empty, so the spool never drains
while the run keeps publishing. Here the disk is made slow on purpose (each append takes
30 ms) and events are published every 5 ms.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from shared.names import Names
from shared.producer import BestEffortProducer, Spool
from tests.conftest import wait_for
from tests.faults.system import PrivateRedis

pytestmark = pytest.mark.integration


@pytest.fixture
def slow_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every spool append takes 30 ms (a loaded disk's fsync)."""
    append = Spool.append

    def slow(self: Spool, bodies: list[bytes]) -> None:
        time.sleep(0.03)
        append(self, bodies)

    monkeypatch.setattr(Spool, "append", slow)


@pytest.fixture
def steady(tmp_path: Path) -> Iterator[tuple[BestEffortProducer, PrivateRedis, list[int]]]:
    """A producer publishing one event every 5 ms to a Redis that is not started yet."""
    server = PrivateRedis(tmp_path / "redis")
    producer = BestEffortProducer(server.url, Names("spoolreg"), tmp_path / "spool.db")
    stop, sent = threading.Event(), [0]

    def publish() -> None:
        while not stop.wait(0.005):  # pacing of the caller's run, not a synchronisation
            producer.publish({"n": sent[0]})
            sent[0] += 1

    thread = threading.Thread(target=publish, daemon=True)
    thread.start()
    yield producer, server, sent
    stop.set()
    thread.join(5)
    producer.close(timeout=5)
    server.crash()


@pytest.mark.usefixtures("slow_disk")
def test_the_spool_drains_while_the_run_keeps_publishing(
    steady: tuple[BestEffortProducer, PrivateRedis, list[int]],
) -> None:
    producer, server, sent = steady
    # given a producer that spooled while Redis was unreachable
    wait_for(lambda: producer.counters.spooled >= 20, timeout=10)
    # when Redis comes up while the run keeps publishing
    server.start()
    # then the spool drains and events reach Redis, without the publisher having to pause
    client = redis.Redis.from_url(server.url)
    try:
        wait_for(lambda: client.xlen(Names("spoolreg").events) >= 20, timeout=15)
    finally:
        client.close()
    assert sent[0] > 0 and producer.counters.dropped == 0
