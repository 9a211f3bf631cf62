"""The container healthcheck on a cluster: a worker must take what waits on every partition."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.cluster import RedisCluster

from services.runtime.healthcheck import check
from services.validator.app import run_validator
from shared.settings import Settings
from tests.cluster import RedisClusterFixture
from tests.integration.api.helpers import eventually
from tests.integration.cluster.workers import cluster_settings, forget

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(redis_cluster: RedisClusterFixture, tmp_path: Path) -> Settings:
    return cluster_settings(redis_cluster, tmp_path)


@pytest.fixture
def client(redis_cluster: RedisClusterFixture, settings: Settings) -> Iterator[RedisCluster]:
    cluster = redis_cluster.client()
    try:
        yield cluster
    finally:
        forget(cluster, settings.names)
        cluster.close()


async def test_a_worker_is_unhealthy_when_one_partition_waits_and_says_which(
    settings: Settings, client: RedisCluster
) -> None:
    names = settings.names
    # given a validator running on every partition: healthy, one line per partition
    stop = asyncio.Event()
    task = asyncio.create_task(run_validator(settings, stop))
    try:
        await eventually(lambda: all(client.exists(p.events) for p in names.all_partitions))
        ok, lines = await check(settings, "validator", max_idle_s=30)
        assert ok and lines == [f"  partition {i}: healthy" for i in range(12)]
    finally:
        stop.set()
        await task
    # when it is gone and an entry waits on partition 7 alone, longer than allowed
    client.xadd(names.partition(7).events, {b"__data__": b"{}"})
    await asyncio.sleep(0.3)  # let the entry and the consumer's idleness age past 0.1 s
    ok, lines = await check(settings, "validator", max_idle_s=0.1)
    # then the worker is unhealthy, and partition 7 is the one named
    assert not ok
    assert [line.split(":")[0].strip() for line in lines if "unhealthy" in line] == ["partition 7"]
