"""Stories: the best-effort producer never blocks or raises, and loses nothing when Redis blips.

Outages happen on private redis-servers (the `redis_server` fixture) or on ports where nothing
answers; the machine's shared Redis is never touched by these stories.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from shared.names import Names
from shared.producer import BestEffortProducer, ProducerCounters
from shared.settings import Settings
from tests.conftest import RedisServer, wait_for
from tests.integration.producer.conftest import SilentServer
from tests.integration.producer.helpers import seqs
from tests.unit.contract.events import pulse

pytestmark = pytest.mark.integration

Make = Callable[..., BestEffortProducer]


def events(start: int, stop: int) -> list[dict[str, Any]]:
    """Pulse events numbered start..stop-1 (the number is in details.seq)."""
    return [
        pulse(event_type="stage.completed", severity="info", details={"seq": i})
        for i in range(start, stop)
    ]


def counters(producer: BestEffortProducer) -> tuple[int, int, int, int]:
    c: ProducerCounters = producer.counters
    return (c.published, c.spooled, c.dropped, c.invalid)


@pytest.fixture
def make_producer(settings: Settings) -> Iterator[Make]:
    """Best-effort producers on this test's namespace and spool, all closed at the end."""
    made: list[BestEffortProducer] = []

    def make(url: str, **kwargs: Any) -> BestEffortProducer:
        kwargs.setdefault("spool_path", settings.spool_path)
        kwargs.setdefault("taxonomy", settings.taxonomy)
        kwargs.setdefault("max_backoff_s", 0.1)
        producer = BestEffortProducer(url, settings.names, **kwargs)
        made.append(producer)
        return producer

    yield make
    for producer in made:
        producer.close(timeout=0.2)


def client_of(server: RedisServer) -> redis.Redis:
    return redis.Redis.from_url(server.url)


def test_events_published_while_redis_is_down_arrive_in_order_once_it_is_back(
    settings: Settings, redis_server: Callable[..., RedisServer], make_producer: Make
) -> None:
    # given a producer whose Redis is not running yet
    server = redis_server(start=False)
    producer = make_producer(server.url)
    # when the run publishes 300 events while Redis is down
    assert all(producer.publish(e) for e in events(0, 300))
    # then every one of them is kept in the durable spool, none published, none lost
    wait_for(lambda: producer.counters.spooled == 300)
    assert counters(producer) == (0, 300, 0, 0)
    assert producer.spool_depth == 300
    # when Redis comes back and the producer flushes
    server.start()
    assert producer.flush(timeout=20)
    # then the stream holds every event, in publish order, and the spool is empty
    assert seqs(client_of(server), settings.names.events) == list(range(300))
    assert counters(producer) == (300, 300, 0, 0)
    assert producer.spool_depth == 0
    # and later events go straight to Redis, after the drained ones
    assert all(producer.publish(e) for e in events(300, 310))
    assert producer.flush(timeout=10)
    assert seqs(client_of(server), settings.names.events) == list(range(310))
    assert counters(producer) == (310, 300, 0, 0)


def test_redis_going_down_mid_run_loses_nothing(
    settings: Settings, redis_server: Callable[..., RedisServer], make_producer: Make
) -> None:
    # given a producer publishing happily to a running Redis
    server = redis_server(appendonly=True)
    producer = make_producer(server.url)
    assert all(producer.publish(e) for e in events(0, 50))
    assert producer.flush(timeout=10)
    assert producer.counters.published == 50
    # when Redis dies (its data persisted) and the run keeps publishing
    server.stop()
    assert all(producer.publish(e) for e in events(50, 150))
    wait_for(lambda: producer.counters.spooled == 100)
    # and Redis restarts on the same port and data
    server.start()
    assert producer.flush(timeout=20)
    # then all 150 are there in order
    assert seqs(client_of(server), settings.names.events) == list(range(150))
    assert counters(producer) == (150, 100, 0, 0)


@pytest.mark.parametrize("outage", ["refused", "silent"])
def test_publishing_1000_events_while_redis_is_unreachable_does_not_wait(
    outage: str, dead_url: str, silent_server: SilentServer, make_producer: Make
) -> None:
    # given Redis unreachable: a refused port, or one that accepts and then never answers
    url = dead_url if outage == "refused" else silent_server.url
    producer = make_producer(url)
    batch = events(0, 1000)
    # when the run publishes 1,000 events (validated client-side)
    started = time.perf_counter()
    accepted = [producer.publish(e) for e in batch]
    elapsed = time.perf_counter() - started
    # then all were taken, and together they took far less than one connect timeout (1 s):
    # publish() never waits on a connection attempt
    assert all(accepted)
    assert elapsed < 0.5, f"1000 publish() calls took {elapsed:.3f}s"
    if outage == "refused":  # and they are safe in the spool
        wait_for(lambda: producer.counters.spooled == 1000)
        assert producer.counters.published == 0
    silent_server.hang_up()


def test_a_spool_left_by_a_closed_producer_is_delivered_by_the_next_one(
    settings: Settings, redis_server: Callable[..., RedisServer], make_producer: Make
) -> None:
    # given a run that published 40 events while Redis was down, then ended
    server = redis_server(start=False)
    first = make_producer(server.url)
    assert all(first.publish(e) for e in events(0, 40))
    assert first.close(timeout=0.3) is False  # could not deliver: the spool keeps them
    assert counters(first) == (0, 40, 0, 0)
    assert first.spool_depth == 40
    # when Redis is back and the next run starts a producer on the same spool file
    server.start()
    second = make_producer(server.url, spool_path=settings.spool_path)
    assert all(second.publish(e) for e in events(40, 50))
    assert second.flush(timeout=20)
    # then the old run's events arrive first, in order, then the new run's
    assert seqs(client_of(server), settings.names.events) == list(range(50))
    assert second.counters.published == 50
    assert second.spool_depth == 0


def test_a_full_buffer_drops_and_counts_instead_of_blocking(
    settings: Settings, redis_server: Callable[..., RedisServer], make_producer: Make
) -> None:
    # given a producer with a 10-event buffer, and a Redis that stalls every write
    server = redis_server()
    admin = client_of(server)
    producer = make_producer(server.url, buffer_size=10)
    admin.client_pause(10_000, all=False)
    try:
        # when the run publishes 100 events while the sender is stuck on its first batch
        taken = [producer.publish(e) for e in events(0, 100)]
    finally:
        admin.client_unpause()
    # then the buffer bounded what was kept: at most the first batch plus a full buffer
    kept = [i for i, ok in enumerate(taken) if ok]
    assert 10 <= len(kept) <= 20
    assert producer.counters.dropped == 100 - len(kept)
    # and once writes resume, exactly the kept events arrive, in order
    assert producer.flush(timeout=20)
    assert seqs(admin, settings.names.events) == kept
    assert counters(producer) == (len(kept), 0, 100 - len(kept), 0)


def test_bad_input_is_counted_never_raised(
    settings: Settings, redis_server: Callable[..., RedisServer], make_producer: Make
) -> None:
    server = redis_server()
    checked = make_producer(server.url)
    unchecked = make_producer(
        server.url, taxonomy=None, spool_path=settings.spool_path.with_name("u.db")
    )
    # invalid events, objects that cannot be encoded, things that are not events at all
    assert checked.publish(pulse(severity="warn")) is False
    assert checked.publish(pulse(details={"when": object()})) is False
    assert checked.publish(42) is False  # type: ignore[arg-type]
    assert unchecked.publish({"payload": {"n": 2**70}}) is False
    assert unchecked.publish({"payload": {1, 2}}) is False
    assert checked.counters.invalid == 3
    assert unchecked.counters.invalid == 2
    # while good events still flow
    assert checked.publish(pulse(details={"seq": 0}))
    assert checked.flush(timeout=10)
    assert seqs(client_of(server), settings.names.events) == [0]


def test_close_flushes_and_later_publishes_are_counted_drops(
    settings: Settings, redis_server: Callable[..., RedisServer], make_producer: Make
) -> None:
    server = redis_server()
    producer = make_producer(server.url)
    assert all(producer.publish(e) for e in events(0, 25))
    # close() returns once everything reached Redis
    assert producer.close(timeout=10) is True
    assert seqs(client_of(server), settings.names.events) == list(range(25))
    assert producer.publish(events(25, 26)[0]) is False
    assert counters(producer) == (25, 0, 1, 0)


def test_names_are_the_namespace_streams(settings: Settings) -> None:
    assert settings.names.events == f"{{{settings.namespace}}}:events"
    assert Names().events == "{runbus}:events"
