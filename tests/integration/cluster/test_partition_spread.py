"""Partitions spread evenly over a real cluster's masters; a partition's streams share one slot."""

from __future__ import annotations

from collections import Counter

import pytest
from redis.crc import key_slot

from shared.connections import async_redis
from shared.names import Names, StreamKind
from shared.settings import Settings
from tests.cluster import RedisClusterFixture

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("partitions", [3, 6, 12, 24])
def test_partitions_spread_evenly_over_the_masters(
    redis_cluster: RedisClusterFixture, partitions: int
) -> None:
    # given a 3-master cluster and P partitions (a multiple of 3)
    names = Names("spread", partitions)
    # when each partition's streams are placed by their slot
    owners = Counter(
        redis_cluster.node_of_slot(key_slot(p.events.encode())) for p in names.all_partitions
    )
    # then every master serves P/3 partitions
    assert sorted(owners.values()) == [partitions // 3] * 3
    # and each partition's three streams share one slot (its atomic moves stay on one node)
    for partition in names.all_partitions:
        slots = {key_slot(partition.stream(kind).encode()) for kind in StreamKind}
        assert len(slots) == 1


async def test_the_settings_client_reaches_every_partition_of_the_cluster(
    redis_cluster: RedisClusterFixture, tmp_path: object
) -> None:
    # given settings pointing at one node of the cluster
    settings = Settings(redis_url=redis_cluster.url, redis_cluster=True, namespace="reach",
                        partitions=12)  # fmt: skip
    client = async_redis(settings)
    try:
        # when an entry is added to every partition's incoming stream
        for partition in settings.names.all_partitions:
            await client.xadd(partition.events, {b"__data__": b"{}"})
        # then each stream holds it, whichever master serves it
        lengths = [await client.xlen(p.events) for p in settings.names.all_partitions]
        assert lengths == [1] * 12
    finally:
        for partition in settings.names.all_partitions:
            await client.delete(partition.events)
        await client.aclose()
