"""The end-to-end story on a real cluster: a workload over every partition, its outcome, the law.

The workload is the fault tests' deterministic mix (`tests.faults.load.EventMix`): valid events
of both dialects go through the real producer (routed by run id); the invalid entries (an
unknown reason code, a wrong stage, truncated JSON) are XADDed raw, each to the partition its
event id hashes to, so several partitions get some. The outcome is read from every partition
(history rows, dead letters, envelopes, pending counts) and checked with the fault tests' own
accounting (`tests.faults.conservation.account`), plus what only a partitioned bus can get
wrong: a dead letter on another partition's dead stream.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis
from redis.cluster import RedisCluster

from services.coach.io import CoachStore
from services.coach.logic import canonical
from services.coach.rebuild import rebuild
from services.history import open_store
from shared.connections import async_redis
from shared.models import COACH_STAGES, CoachDocument
from shared.names import Names, Partition
from shared.pipeline import PIPELINE
from shared.producer import SyncProducer
from shared.settings import Settings
from shared.wire import DATA_FIELD, parse_dead_letter, parse_envelope
from tests.cluster import RedisClusterFixture
from tests.faults.conservation import (
    Expected,
    Figures,
    Letter,
    Snapshot,
    account,
    history_counts,
    xrange_all,
)
from tests.faults.load import Offer, Publish, event_id_of

#: The code the validator must give each invalid shape of the mix, by what the shape breaks.
INVALID_CODES = {
    "reason_code": "invalid_reason_code:no_such_code",
    "stage": "invalid_stage:no_such_stage",
    None: "malformed_json",
}


def expected_code(offer: Offer) -> str:
    """The dead-letter code an invalid offer of the mix must get."""
    if offer.doc is None:
        return INVALID_CODES[None]
    return INVALID_CODES["stage" if offer.doc["stage"] == "no_such_stage" else "reason_code"]


def expected_dead(offers: Iterable[Offer]) -> Expected:
    """event id -> (stage, code) of every invalid offer."""
    return {o.event_id: ("validator", expected_code(o)) for o in offers if o.kind == "invalid"}


def invalid_partition(names: Names, offer: Offer) -> Partition:
    """Where a raw invalid entry goes: the partition its event id hashes to (any is accepted)."""
    return names.partition_for(offer.event_id)


def cluster_publisher(client: RedisCluster, settings: Settings) -> Publish:
    """Valid offers through the real `SyncProducer`; invalid ones by plain XADD."""
    producer = SyncProducer(client, settings.names, settings.taxonomy)  # type: ignore[arg-type]

    def publish(batch: list[Offer]) -> list[Offer]:
        producer.publish_many([o.doc for o in batch if o.kind == "valid" and o.doc is not None])
        invalid = [o for o in batch if o.kind == "invalid"]
        with client.pipeline(transaction=False) as pipe:  # type: ignore[no-untyped-call]
            for offer in invalid:
                pipe.xadd(invalid_partition(settings.names, offer).events, {DATA_FIELD: offer.body})
            pipe.execute()
        return batch

    return publish


@dataclass(frozen=True)
class DeadEntry:
    """One dead letter where it was found: its partition, its entry id there, the letter."""

    partition: int
    entry_id: str
    letter: Letter


def dead_entries(client: RedisCluster, names: Names) -> list[DeadEntry]:
    """Every dead letter of every partition."""
    found: list[DeadEntry] = []
    for p in names.all_partitions:
        for entry_id, fields in _xrange_with_ids(client, p.dead):
            found.append(DeadEntry(p.index, entry_id, _letter(fields)))
    return found


def _xrange_with_ids(client: RedisCluster, stream: str) -> list[tuple[str, dict[bytes, bytes]]]:
    rows: list[tuple[bytes, dict[bytes, bytes]]] = client.xrange(stream)  # type: ignore[assignment]
    return [(i.decode(), f) for i, f in rows]


def _letter(fields: dict[bytes, bytes]) -> Letter:
    dl = parse_dead_letter(fields)
    return Letter(
        dl.stage, dl.source_stream, dl.source_id, tuple(dl.errors), event_id_of(dl.original),
        dl.delivery_count,
    )  # fmt: skip


def misplaced(names: Names, letters: list[DeadEntry]) -> list[DeadEntry]:
    """Dead letters not on the dead stream of the partition their entry was read from."""
    return [d for d in letters if d.letter.source_stream != names.partition(d.partition).events]


def pending(client: RedisCluster, names: Names) -> dict[str, int]:
    """Pending entries of each stage's group, summed over the partitions (-1: a group missing)."""
    out: dict[str, int] = {}
    for stage in PIPELINE.stages:
        total = 0
        for stream in names.streams(stage.reads):
            try:
                total += int(client.xpending(stream, stage.group)["pending"])
            except redis.ResponseError:
                return {**out, stage.name: -1}
        out[stage.name] = total
    return out


def quiescent(client: RedisCluster, names: Names) -> bool:
    """Every group of every partition exists, delivered its stream's last entry and holds none."""
    for stage in PIPELINE.stages:
        for stream in names.streams(stage.reads):
            try:
                last = client.xinfo_stream(stream)["last-generated-id"]
                groups = client.xinfo_groups(stream)
            except redis.ResponseError:
                return False
            group = next((g for g in groups if _text(g["name"]) == stage.group), None)
            if group is None or group["pending"] or group["last-delivered-id"] != last:
                return False
    return True


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def snapshot(client: RedisCluster, settings: Settings, letters: list[DeadEntry]) -> Snapshot:
    """The outcome over every partition, in the shape the fault tests' accounting reads."""
    envelopes = [
        _envelope(p, fields)
        for p in settings.names.all_partitions
        for fields in xrange_all(client, p.valid)  # type: ignore[arg-type]
    ]
    return Snapshot(
        history=await history_counts(settings.database_url),
        letters=[d.letter for d in letters],
        envelopes=envelopes,
        pending=pending(client, settings.names),
    )


def _envelope(partition: Partition, fields: dict[bytes, bytes]) -> tuple[str, str]:
    """(source, event id) of an envelope; the source qualified by its partition, because
    entry ids repeat across the partitions' incoming streams."""
    envelope = parse_envelope(fields[DATA_FIELD])
    return f"{partition.index}:{envelope.source_id}", envelope.event_id


def law(offered: dict[str, Offer], snap: Snapshot, name: str) -> Figures:
    """The fault tests' conservation accounting of the offers (every invalid one with its code)."""
    figures = Figures(name, "cluster")
    return account(offered, snap, figures, expected_dead(offered.values()))


# --- the coach cache against a rebuild ------------------------------------------------------


async def coach_diff(client: RedisCluster, live: Settings, fresh: Settings) -> list[str]:
    """Rebuild the coach from the live history into `fresh`'s namespace and compare, per
    project, the state's facts and each stage's suggestions (empty: equal)."""
    history = open_store(live)
    await history.open()
    aclient = async_redis(fresh)
    try:
        store = CoachStore(aclient, fresh.names)
        await rebuild(store, fresh.taxonomy.version, history.iter_events(None))
    finally:
        await aclient.aclose()
        await history.close()
    return compare_coach(client, live.names, fresh.names)


def compare_coach(client: RedisCluster, live: Names, rebuilt: Names) -> list[str]:
    """The differences between two namespaces' coach caches."""
    projects = _projects(client, live) | _projects(client, rebuilt)
    diffs = [] if projects else ["the coach cached nothing at all"]
    for project in sorted(projects):
        state = live.coach_state(project), rebuilt.coach_state(project)
        if client.hgetall(state[0]) != client.hgetall(state[1]):
            diffs.append(f"project {project}: coach state differs from the rebuild")
        for stage in COACH_STAGES:
            if suggestions(client, live, project, stage) != suggestions(
                client, rebuilt, project, stage
            ):
                diffs.append(f"project {project} {stage}: suggestions differ from the rebuild")
    return diffs


def _projects(client: RedisCluster, names: Names) -> set[int]:
    return {int(p) for p in client.smembers(names.coach_projects)}


def suggestions(client: RedisCluster, names: Names, project: int, stage: str) -> bytes | None:
    """One stage's cached suggestions, canonically (None: no document)."""
    raw = client.get(names.coach_key(project, stage))
    if raw is None:
        return None
    return canonical(CoachDocument.model_validate_json(raw).suggestions)


def forget(cluster: RedisClusterFixture, *namespaces: str) -> None:
    """Delete every key of these namespaces from every master (test cleanup)."""
    for port in cluster.masters():
        node = redis.Redis(port=port)
        try:
            for ns in namespaces:
                for pattern in Names(ns).key_patterns:
                    for key in node.scan_iter(match=pattern, count=1000):
                        node.delete(key)
        finally:
            node.close()
