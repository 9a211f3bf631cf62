"""The coach on a real 3+3 Redis Cluster (P=12): each project's keys in one slot, documents the
worker writes equal a rebuild's, the API serves them, and one subscriber on one node hears the
changes of projects whose scripts ran on the other masters.

The coach worker reads partition 0's valid stream on this branch, so the entries go there; once
it reads every partition (issue #13, "Workers"), route them with `names.partition_for`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aredis
from redis.crc import key_slot

from services.coach import logic, reads
from services.coach.app import run_coach
from services.coach.handler import CoachStats
from services.coach.io import CoachStore
from services.coach.rebuild import rebuild
from services.history import open_store
from shared.connections import async_redis
from shared.models import COACH_STAGES, CoachDocument, RunEvent
from shared.names import Names
from shared.settings import Settings
from tests.cluster import RedisClusterFixture
from tests.integration.api.helpers import started_app
from tests.integration.coach.conftest import eventually
from tests.unit.coach.builders import body, event, state_of, success, wrap

pytestmark = pytest.mark.integration


def cluster_settings(cluster: RedisClusterFixture, tmp_path: Path, namespace: str) -> Settings:
    """Settings of a bus on the cluster with 12 partitions, its history in a SQLite file."""
    return Settings(
        redis_url=cluster.url, redis_cluster=True, partitions=12, namespace=namespace,
        database_url=f"sqlite:///{tmp_path / f'{namespace}.db'}",
        spool_path=tmp_path / f"{namespace}-spool.db", claim_idle_ms=500,
        janitor_interval_s=0.2, block_ms=100, _env_file=None,  # type: ignore[call-arg]
    )  # fmt: skip


def spread_projects(cluster: RedisClusterFixture, names: Names) -> list[int]:
    """Six project ids whose coach tags are served by all three masters, two each."""
    by_master: dict[int, list[int]] = {}
    for project in range(1, 1000):
        owner = cluster.node_of_slot(key_slot(names.coach_tag(project).encode()))
        if len(by_master.setdefault(owner, [])) < 2:
            by_master[owner].append(project)
        if sum(map(len, by_master.values())) == 6:
            return sorted(p for ps in by_master.values() for p in ps)
    raise AssertionError("no spread of projects over the masters")  # pragma: no cover


def day_of(project: int) -> list[RunEvent]:
    """A project's events: an OOM, a recovery, rows promoted, an import."""
    rows = {"target": "gold_set", "rows": 10 * project}
    imported = {"accepted": 100, "rejected": 70, "source": "s3://b/x"}
    return [
        event("training_oom", t=1, project=project, payload={"batch_size": 32}),
        success("training", t=2, project=project, batch_size=16),
        event("annotation_rows_promoted", t=3, project=project, payload=rows),
        event("dataset_import_run", t=4, project=project, payload=imported),
    ]


def expected_documents(events: list[RunEvent]) -> dict[str, bytes]:
    """What every stage must say after a project's events, by the pure functions alone."""
    state = state_of(events)
    return {stage: logic.canonical(logic.suggest(stage, state)) for stage in COACH_STAGES}


async def canonical(client: aredis.Redis, names: Names, project: int) -> dict[str, bytes]:
    """Every stage's cached suggestions, canonically (versions and times aside)."""
    docs = await reads.get_project(client, names, project) or {}
    return {stage: logic.canonical(doc.suggestions) for stage, doc in docs.items()}


async def forget(cluster: RedisClusterFixture, names: Names) -> None:
    """Remove the namespace's keys from every master."""
    for port in cluster.masters():
        node = aredis.Redis(port=port)
        for pattern in names.key_patterns:
            async for key in node.scan_iter(match=pattern, count=1000):
                await node.delete(key)
        await node.aclose()


@pytest.fixture
async def bus(
    redis_cluster: RedisClusterFixture, tmp_path: Path
) -> AsyncIterator[tuple[Settings, aredis.Redis, Settings]]:
    """Settings of a fresh namespace on the cluster, a cluster client, and a second namespace."""
    namespace = f"t{uuid.uuid4().hex[:8]}"
    settings = cluster_settings(redis_cluster, tmp_path, namespace)
    rebuilt = cluster_settings(redis_cluster, tmp_path, f"{namespace}r")
    client = async_redis(settings)
    yield settings, client, rebuilt
    for names in (settings.names, rebuilt.names):
        await forget(redis_cluster, names)
    await client.aclose()


async def subscriber(cluster: RedisClusterFixture, names: Names) -> tuple[int, Any]:
    """A plain client on one master, subscribed to the change channel (confirmed)."""
    port = min(cluster.masters())
    pubsub = aredis.Redis(port=port).pubsub()
    await pubsub.subscribe(names.coach_changes)
    confirm = await pubsub.get_message(timeout=5.0)
    assert confirm is not None and confirm["type"] == "subscribe"
    return port, pubsub


async def heard(pubsub: Any, expected: set[tuple[int, str]]) -> set[tuple[int, str]]:
    """The (project, stage) announcements received until all of `expected` came (or 20 s)."""
    seen: set[tuple[int, str]] = set()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while not expected <= seen and loop.time() < deadline:
        msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
        if msg is not None:
            change = orjson.loads(msg["data"])
            seen.add((change["project_id"], change["stage"]))
    return seen


async def test_the_coach_on_a_cluster_caches_announces_rebuilds_and_serves(
    redis_cluster: RedisClusterFixture, bus: tuple[Settings, aredis.Redis, Settings]
) -> None:
    settings, client, rebuilt = bus
    names = settings.names
    # given six projects whose coach keys live on all three masters, two each
    projects = spread_projects(redis_cluster, names)
    for project in projects:
        keys = [names.coach_state(project), names.coach_meta(project)]
        keys += [names.coach_key(project, stage) for stage in COACH_STAGES]
        assert len({key_slot(k.encode()) for k in keys}) == 1  # one slot per project
    events = [e for p in projects for e in day_of(p)]
    # and a subscriber on one master only
    port, pubsub = await subscriber(redis_cluster, names)
    elsewhere = [
        p for p in projects
        if redis_cluster.node_of_slot(key_slot(names.coach_tag(p).encode())) != port
    ]  # fmt: skip
    assert len(elsewhere) == 4
    # when the coach worker reads their valid-stream entries
    for ev in events:
        await client.xadd(names.partition(0).valid, {b"__data__": body(ev)})
    stop, stats = asyncio.Event(), CoachStats()
    worker = asyncio.create_task(run_coach(settings, stop, "coach-cluster", stats))
    try:

        async def handled() -> bool:
            if worker.done():
                worker.result()  # surface a crash instead of waiting for the deadline
            return stats.entries >= len(events)

        await eventually(handled, 30, "every entry handled")
    finally:
        stop.set()
        await worker
    # then every project has its five documents, saying what the pure functions say
    live = {p: await canonical(client, names, p) for p in projects}
    for p in projects:
        assert live[p] == expected_documents([e for e in events if e.project_id == p])
    assert await reads.known_projects(client, names) == projects
    # and the subscriber on one node heard every project's changes, from every master
    everything = {(p, stage) for p in projects for stage in COACH_STAGES}
    assert await heard(pubsub, everything) >= everything
    await pubsub.aclose()
    # and a rebuild from the history (in another namespace) gives the same documents
    await check_rebuild(settings, rebuilt, events, live)
    # and the API serves the worker's documents
    await check_api(settings, projects, live)


async def check_rebuild(
    settings: Settings, fresh: Settings, events: list[RunEvent], live: dict[int, Any]
) -> None:
    """`runbus coach rebuild`'s library function into `fresh`, from a history of the events."""
    projects = sorted(live)
    history = open_store(settings)
    await history.open()
    try:
        await history.migrate()
        await history.insert_batch([wrap(e, f"{i}-0") for i, e in enumerate(events, 1)])
        client = async_redis(fresh)
        try:
            store = CoachStore(client, fresh.names)
            report = await rebuild(store, fresh.taxonomy.version, history.iter_events(None))
            assert report.projects == set(projects) and report.stats.written == 5 * len(projects)
            assert {p: await canonical(client, fresh.names, p) for p in projects} == live
        finally:
            await client.aclose()
        # and over the worker's own cache the same rebuild changes nothing
        client = async_redis(settings)
        try:
            store = CoachStore(client, settings.names)
            again = await rebuild(store, settings.taxonomy.version, history.iter_events(None))
            assert again.stats.written == 0 and again.stats.unchanged == 5 * len(projects)
        finally:
            await client.aclose()
    finally:
        await history.close()


async def check_api(settings: Settings, projects: list[int], live: dict[int, Any]) -> None:
    """GET /api/projects/{id}/coach on the cluster returns the worker's documents."""
    async with started_app(settings) as (_, http):
        for p in projects:
            response = await http.get(f"/api/projects/{p}/coach")
            assert response.status_code == 200, response.text
            stages = response.json()["stages"]
            assert set(stages) == set(COACH_STAGES)
            docs = {s: CoachDocument.model_validate(d) for s, d in stages.items()}
            assert {s: logic.canonical(d.suggestions) for s, d in docs.items()} == live[p]
        # and every stage read at once (their batched GETs span every master) is its own
        paths = [(p, s) for p in projects for s in COACH_STAGES]
        answers = await asyncio.gather(
            *(http.get(f"/api/projects/{p}/coach/{s}") for p, s in paths)
        )
        for (p, s), answer in zip(paths, answers, strict=True):
            doc = CoachDocument.model_validate_json(answer.content)
            assert (doc.project_id, doc.stage) == (p, s)
            assert logic.canonical(doc.suggestions) == live[p][s]
