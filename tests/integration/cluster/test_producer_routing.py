"""Stories: on a real 3+3 cluster with P=12, every producer puts each run on its own partition.

Producer, SyncProducer, BestEffortProducer and ``POST /api/events`` publish events of many runs
(interleaved, several per run, in pipelines that span every partition); each event lands on
`names.partition_for(run_id).events`, and a run's events keep their order there.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis
from typer.testing import CliRunner

from services.cli.main import app
from shared.connections import async_redis, sync_redis
from shared.names import StreamKind
from shared.producer import BestEffortProducer, Producer, SyncProducer
from shared.settings import Settings
from tests.cluster import RedisClusterFixture
from tests.conftest import wait_for
from tests.integration.api.helpers import started_app
from tests.unit.contract.events import pulse

pytestmark = pytest.mark.integration

RUNS = [f"run-{i}" for i in range(60)]
PER_RUN = 4


def events() -> list[dict[str, Any]]:
    """PER_RUN events of every run, interleaved, numbered per run in details.seq."""
    return [pulse(run_id=run, details={"seq": seq}) for seq in range(PER_RUN) for run in RUNS]


@pytest.fixture
def settings(redis_cluster: RedisClusterFixture, tmp_path: Path) -> Settings:
    """Cluster settings of this test's own namespace, 12 partitions."""
    return Settings(
        redis_url=redis_cluster.url,
        redis_cluster=True,
        partitions=12,
        namespace=f"t{uuid.uuid4().hex[:8]}",
        database_url=f"sqlite:///{tmp_path / 'history.db'}",
        spool_path=tmp_path / "spool.db",
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[redis.Redis]:
    """A cluster client; the namespace's incoming streams are deleted afterwards."""
    client = sync_redis(settings)
    yield client
    for stream in settings.names.streams(StreamKind.EVENTS):
        client.delete(stream)
    client.close()


def placement(client: redis.Redis, settings: Settings) -> dict[str, list[tuple[str, int]]]:
    """For every run, (stream, seq) of each of its events, in stream order."""
    found: dict[str, list[tuple[str, int]]] = {}
    for stream in settings.names.streams(StreamKind.EVENTS):
        for _, fields in client.xrange(stream):
            doc = orjson.loads(fields[b"__data__"])
            found.setdefault(doc["run_id"], []).append((stream, doc["details"]["seq"]))
    return found


def assert_every_run_on_its_partition_in_order(client: redis.Redis, settings: Settings) -> None:
    found = placement(client, settings)
    assert sorted(found) == sorted(RUNS)
    for run, entries in found.items():
        expected = settings.names.partition_for(run).events
        assert entries == [(expected, seq) for seq in range(PER_RUN)], run
    # and the runs are spread over the whole cluster: every master holds some partitions
    used = [s for s in settings.names.streams(StreamKind.EVENTS) if client.xlen(s)]
    assert len(used) == 12


def test_sync_producer_routes_each_run_to_its_partition(
    settings: Settings, client: redis.Redis
) -> None:
    # given a sync producer on the cluster
    producer = SyncProducer(client, settings.names, settings.taxonomy)
    batch = events()
    # when it publishes one event at a time, then the rest in one pipeline over every partition
    ids = [producer.publish(e) for e in batch[: len(RUNS)]]
    ids += producer.publish_many(batch[len(RUNS) :])
    # then each event is on its run's partition, in order, and every id came back
    assert len(ids) == len(batch) and all(ids)
    assert_every_run_on_its_partition_in_order(client, settings)


async def test_async_producer_routes_each_run_to_its_partition(
    settings: Settings, client: redis.Redis
) -> None:
    # given an asyncio producer on the cluster
    aclient = async_redis(settings)
    producer = Producer(aclient, settings.names, settings.taxonomy)
    batch = events()
    try:
        # when it publishes one at a time, then the rest in one pipeline
        ids = [await producer.publish(e) for e in batch[: len(RUNS)]]
        ids += await producer.publish_many(batch[len(RUNS) :])
    finally:
        await aclient.aclose()
    # then each event is on its run's partition, in order
    assert len(ids) == len(batch) and all(ids)
    assert_every_run_on_its_partition_in_order(client, settings)


def test_best_effort_producer_routes_each_run_to_its_partition(
    settings: Settings, client: redis.Redis
) -> None:
    # given a best-effort producer on the cluster
    producer = BestEffortProducer(
        settings.redis_url, settings.names, settings.spool_path, settings.taxonomy,
        batch_size=50, cluster=True,
    )  # fmt: skip
    # when the run publishes events of many runs and closes
    assert all(producer.publish(e) for e in events())
    assert producer.close(timeout=20)
    # then all were published directly, each on its run's partition, in order
    assert (producer.counters.published, producer.counters.spooled) == (len(RUNS) * PER_RUN, 0)
    assert_every_run_on_its_partition_in_order(client, settings)


@pytest.fixture
async def http(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the API app started with the cluster settings."""
    async with started_app(settings) as (_, http):
        yield http


async def test_post_api_events_routes_each_run_to_its_partition(
    settings: Settings, client: redis.Redis, http: httpx.AsyncClient
) -> None:
    # when events of many runs are posted one by one
    for event in events():
        response = await http.post("/api/events", json=event)
        assert response.status_code == 202, response.text
    # then each is on its run's partition, in posting order
    wait_for(lambda: sum(client.xlen(s) for s in settings.names.streams(StreamKind.EVENTS)) > 0)
    assert_every_run_on_its_partition_in_order(client, settings)


def test_runbus_publish_routes_each_run_to_its_partition(
    settings: Settings, client: redis.Redis, redis_cluster: RedisClusterFixture
) -> None:
    # given the command line configured for the cluster and 12 partitions
    env = {"RUNBUS_REDIS_URL": redis_cluster.url, "RUNBUS_REDIS_CLUSTER": "true",
           "RUNBUS_PARTITIONS": "12", "RUNBUS_NAMESPACE": settings.namespace}  # fmt: skip
    ndjson = "\n".join(orjson.dumps(e).decode() for e in events())
    # when `runbus publish` reads the events of many runs from stdin
    result = CliRunner().invoke(app, ["publish"], input=ndjson, env=env)
    # then it printed an id per event and each is on its run's partition, in order
    assert result.exit_code == 0, result.output
    assert len(result.output.split()) == len(RUNS) * PER_RUN
    assert_every_run_on_its_partition_in_order(client, settings)
