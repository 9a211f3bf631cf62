"""Helpers for worker stories on the real cluster: settings, events per partition, outcomes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from redis.cluster import RedisCluster

from shared.names import Names, Partition, StreamKind
from shared.pipeline import PIPELINE
from shared.settings import Settings
from shared.taxonomy import SEED_TAXONOMY
from shared.wire import DATA_FIELD, parse_dead_letter, parse_envelope
from tests.cluster import RedisClusterFixture

PARTITIONS = 12


def cluster_settings(cluster: RedisClusterFixture, tmp_path: Path, **extra: Any) -> Settings:
    """Settings of one test on the shared cluster: its own namespace, P=12, SQLite history."""
    return Settings(
        redis_url=cluster.url,
        redis_cluster=True,
        partitions=PARTITIONS,
        namespace=f"t{uuid.uuid4().hex[:8]}",
        database_url=f"sqlite:///{tmp_path / 'history.db'}",
        spool_path=tmp_path / "spool.db",
        claim_idle_ms=500,
        janitor_interval_s=0.2,
        block_ms=100,
        _env_file=None,  # type: ignore[call-arg]
        **extra,
    )


def forget(client: RedisCluster, names: Names) -> None:
    """Delete every stream and counters hash of the namespace (one key per command)."""
    for kind in StreamKind:
        for stream in names.streams(kind):
            client.delete(stream)
    for stage in PIPELINE.stage_names:
        client.delete(names.metrics(stage))


def run_ids(names: Names, partition: Partition, count: int) -> Iterator[str]:
    """`count` run ids that producers route to `partition`."""
    found, k = 0, 0
    while found < count:
        run_id = f"run-{k}"
        k += 1
        if names.partition_for(run_id).index == partition.index:
            found += 1
            yield run_id


def brewslm(run_id: str, event_id: str) -> bytes:
    """A valid BrewSLM RunEvent."""
    return orjson.dumps(
        {"event_id": event_id, "project_id": 7, "run_id": run_id, "stage": "training",
         "severity": "info", "ts": "2026-05-01T12:00:00Z"}
    )  # fmt: skip


def pulse(run_id: str, event_id: str) -> bytes:
    """A valid Pulse event (the catalog's first type, at its severity)."""
    event_type, severity = next(iter(SEED_TAXONOMY.pulse_types.items()))
    return orjson.dumps(
        {"event_id": event_id, "run_id": run_id, "event_type": event_type, "severity": severity,
         "message": "m", "created_at": "2026-05-01T12:00:00Z"}
    )  # fmt: skip


def xadd_all(client: RedisCluster, stream: str, bodies: list[bytes]) -> list[str]:
    """XADD each body as ``__data__`` to one stream (one slot: one pipeline); the entry ids."""
    with client.pipeline(transaction=False) as pipe:
        for body in bodies:
            pipe.xadd(stream, {DATA_FIELD: body})
        return [i.decode() for i in pipe.execute()]


def valid_sources(client: RedisCluster, partition: Partition) -> list[str]:
    """The incoming entry ids of the envelopes on a partition's valid stream."""
    return [parse_envelope(f[DATA_FIELD]).source_id for _, f in client.xrange(partition.valid)]


def dead_letters(client: RedisCluster, partition: Partition) -> list[Any]:
    """The dead letters on a partition's dead stream."""
    return [parse_dead_letter(f) for _, f in client.xrange(partition.dead)]


def pending(client: RedisCluster, stream: str, group: str) -> int:
    """Entries of `stream` that `group` holds unacknowledged (0 before the group exists)."""
    try:
        return int(client.xpending(stream, group)["pending"])
    except Exception:  # no stream or no group yet
        return 0


def routed(client: RedisCluster, partition: Partition) -> int:
    """Entries of a partition that reached its valid or its dead stream."""
    return int(client.xlen(partition.valid)) + int(client.xlen(partition.dead))
