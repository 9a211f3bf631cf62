"""The settings' asyncio cluster client packs commands in C on every node it talks to."""

from __future__ import annotations

import uuid

import pytest

from shared.connections import HiredisPacking, async_redis
from shared.names import Names
from shared.settings import Settings
from tests.cluster import RedisClusterFixture

pytestmark = pytest.mark.integration


async def test_every_node_connection_packs_in_c(redis_cluster: RedisClusterFixture) -> None:
    # Given the cluster client of settings with 12 partitions (streams on every master)
    settings = Settings(
        redis_url=redis_cluster.url, redis_cluster=True, partitions=12,
        namespace=f"pk{uuid.uuid4().hex[:8]}", _env_file=None,
    )  # type: ignore[call-arg]  # fmt: skip
    names = Names(settings.namespace, settings.partitions)
    client = async_redis(settings)
    try:
        # When a stream of each partition gets entries and a 1000-id XACK
        for partition in names.all_partitions:
            ids = [await client.xadd(partition.events, {b"__data__": b"{}"}) for _ in range(3)]
            await client.xgroup_create(partition.events, "g", id="0")
            await client.xreadgroup("g", "c", {partition.events: ">"})
            unknown = [f"1-{i}" for i in range(997)]
            assert await client.xack(partition.events, "g", *ids, *unknown) == 3
        # Then every connection the client opened, on every node, is a C-packing one
        nodes = client.get_nodes()  # type: ignore[attr-defined]
        opened = [conn for node in nodes for conn in node._connections]
        assert opened and all(isinstance(conn, HiredisPacking) for conn in opened)
        assert len({node.port for node in nodes if node._connections}) == 3
    finally:
        for partition in names.all_partitions:
            await client.delete(partition.events)
        await client.aclose()
