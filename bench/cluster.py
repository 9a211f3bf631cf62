"""The cluster part: the same pipeline on one Redis and on a local 3+3 Redis Cluster, one run.

A six-node cluster (three masters, three replicas) is started on six free consecutive loopback
ports by `services.runtime.local_cluster.ensure_cluster` (what ``make run-cluster`` uses), its
files under the run's directory, and stopped at the end. Then, each on a fresh namespace and
PostgreSQL schema (the history at scale), validator, persister and coach run as real processes
(`bench.services.ServiceGroup`) through one flat-out sustained phase (`bench.pipeline`):

- on the single node with P = 1 and P = 4 partitions (``RUNBUS_PARTITIONS``);
- on the cluster (``RUNBUS_REDIS_CLUSTER=true``) with each P of the plan (3, 6, 12).

Besides the pipeline's figures, it measures what the capacity model (`bench.capacity`) needs:
limit 1 on one master of the cluster (a shard's ceiling), the producer's rate through a cluster
client over P partitions, and the CPU of the Redis masters and of the PostgreSQL backends serving
the persister (`bench.pgcpu`) per event.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aredis
from redis.crc import key_slot

from bench import limits, pgcpu, pipeline
from bench.env import REDIS_URL, Workspace
from bench.plan import Plan
from bench.probes import History, open_history
from bench.producer import BATCH, Options, connect, publish
from bench.services import ServiceGroup
from bench.stats import rounded
from services.runtime.local_cluster import (
    MAX_PORT,
    NODES,
    LocalCluster,
    ensure_cluster,
    node_ports_free,
)
from services.runtime.logic import redis_port
from shared.names import Names

#: Where the search for six free consecutive ports starts (below the usual ephemeral range).
FIRST_PORT = 21000


@dataclass(frozen=True)
class Target:
    """Where one sustained run's services talk to Redis."""

    label: str
    redis_url: str
    cluster: bool
    cpu_ports: tuple[int, ...]
    """Redis servers whose CPU counts as the bus's (the masters on a cluster)."""


def free_block(count: int = NODES, start: int = FIRST_PORT) -> int:
    """First port of `count` consecutive free ports whose cluster-bus twins (+10000) are free."""
    for first in range(start, MAX_PORT - count, count):
        if node_ports_free(first, count):
            return first
    raise RuntimeError("no six free consecutive loopback ports for the cluster")


def masters(port: int) -> tuple[int, ...]:
    """Ports of the cluster's masters, from CLUSTER SLOTS on one node."""
    client = redis.Redis(port=port)
    try:
        return tuple(sorted({int(row[2][1]) for row in client.cluster("slots")}))
    finally:
        client.close()


def _slots_of(port: int) -> list[tuple[int, int]]:
    client = redis.Redis(port=port)
    try:
        rows = client.cluster("slots")
    finally:
        client.close()
    return [(int(r[0]), int(r[1])) for r in rows if int(r[2][1]) == port]


def key_on(port: int, stem: str) -> str:
    """A stream key (``{stem-N}:limit``) whose slot the master on `port` serves."""
    ranges = _slots_of(port)
    for n in range(100_000):
        key = "{" + f"{stem}-{n}" + "}:limit"
        slot = key_slot(key.encode())
        if any(lo <= slot <= hi for lo, hi in ranges):
            return key
    raise RuntimeError(f"no key found for the master on {port}")


def shard_limit(port: int, stem: str, count: int) -> float:
    """Limit 1 (pipelined XADD of 300-byte events) on one master: one shard's ingest ceiling."""
    client = redis.Redis(port=port)
    stream = key_on(port, stem)
    try:
        return limits.push(client, stream, count)
    finally:
        client.unlink(stream)
        client.close()


def producer_rate(url: str, namespace: str, partitions: int, count: int) -> float:
    """Events/s of one producer process through a cluster client, routed over `partitions`."""
    opts = Options(url, namespace, partitions, True, 0.0, 0, 0, 0, 0, "r-")
    client = connect(url, cluster=True)
    began = time.perf_counter()
    try:
        for first in range(0, count, BATCH):
            publish(client, opts, first, BATCH)
        return count / (time.perf_counter() - began)
    finally:
        for partition in Names(namespace, partitions).all_partitions:
            client.unlink(partition.events)
        client.close()


def _client(target: Target) -> aredis.Redis:
    if target.cluster:
        return aredis.RedisCluster.from_url(target.redis_url)  # type: ignore[return-value]
    return aredis.Redis.from_url(target.redis_url)


def _summary(sus: dict[str, Any], pg_us: float | None) -> dict[str, Any]:
    keep = ("eps", "history_eps", "coach_eps", "seconds", "drained", "lost", "drain_s")
    found = {k: sus.get(k) for k in keep}
    found["producer_eps"] = (sus.get("producer") or {}).get("eps")
    found["cpu_us_per_event"] = (sus.get("cpu_us_per_event") or {}) | {"postgres": pg_us}
    found["stages"] = sus.get("stages")
    return found


async def sustained_on(
    ws: Workspace, plan: Plan, target: Target, partitions: int
) -> dict[str, Any]:
    """One flat-out sustained phase of the whole pipeline with `partitions` partitions."""
    part = f"{target.label}p{partitions}"
    url = ws.postgres_url(part)
    services = ServiceGroup(
        ws.namespace(part), url, ws.directory,
        redis_url=target.redis_url, partitions=partitions, cluster=target.cluster,
    )  # fmt: skip
    client = _client(target)
    history: History | None = None
    try:
        startup = services.start()
        history = await open_history(url)
        p = pipeline.Pipeline(services.names, client, history, services.pids)
        p.redis_url, p.cluster, p.redis_ports = target.redis_url, target.cluster, target.cpu_ports
        persister = services.pids["persister"]
        pg_before = await pgcpu.backend_cpu(persister)
        sus = await pipeline.sustained(p, plan.scale_s, plan.warmup_s, "c-")
        pg_s = pgcpu.spent(pg_before, await pgcpu.backend_cpu(persister))
        pg_us = rounded(pg_s / (p.valid or 1) * 1e6, 1)
    finally:
        if history is not None:
            await history.close()
        services.stop()
        await client.aclose()
    return {"partitions": partitions, "startup_s": round(startup, 2), **_summary(sus, pg_us)}


def _single_node() -> Target:
    return Target("node", REDIS_URL, False, (redis_port(REDIS_URL),))


async def _runs(ws: Workspace, plan: Plan, cluster: Target) -> dict[str, Any]:
    node = _single_node()
    return {
        "node": [await sustained_on(ws, plan, node, p) for p in plan.node_partitions],
        "cluster": [await sustained_on(ws, plan, cluster, p) for p in plan.cluster_partitions],
    }


#: Rounds of each ceiling; the best counts (other load on the machine only ever slows a round).
CEILING_ROUNDS = 3


def _measured_limits(
    ws: Workspace, plan: Plan, first: int, tops: tuple[int, ...]
) -> dict[str, Any]:
    stem, count = ws.namespace("shard"), plan.limit_events
    url, p = f"redis://127.0.0.1:{first}/0", max(plan.cluster_partitions)
    shard = [shard_limit(tops[0], stem, count) for _ in range(CEILING_ROUNDS)]
    producer = [producer_rate(url, stem, p, count) for _ in range(CEILING_ROUNDS)]
    return {
        "shard_limit_xadd_eps": rounded(max(shard), 0),
        "producer_cluster_eps": rounded(max(producer), 0),
        "rounds": {"shard_xadd_eps": [round(x) for x in shard],
                   "producer_eps": [round(x) for x in producer]},
    }  # fmt: skip


def run(ws: Workspace, plan: Plan) -> dict[str, Any]:
    """The cluster part: start the cluster, measure, stop it."""
    first = free_block()
    url = f"redis://127.0.0.1:{first}/0"
    began = time.monotonic()
    local: LocalCluster = ensure_cluster(url, ws.directory / "cluster")
    try:
        started = round(time.monotonic() - began, 2)
        tops = masters(first)
        out: dict[str, Any] = {"ports": list(local.ports), "masters": list(tops)}
        out |= {"start_s": started, **_measured_limits(ws, plan, first, tops)}
        cluster = Target("cluster", url, True, tops)
        out |= asyncio.run(_runs(ws, plan, cluster))
    finally:
        local.stop()
    return out
