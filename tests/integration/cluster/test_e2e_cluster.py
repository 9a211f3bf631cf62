"""The end-to-end story on a real 3+3 Redis Cluster with 12 partitions and a SQLite history.

Both dialects, published by the real producer over many runs (so every partition gets traffic),
and invalid entries XADDed raw onto several partitions, go through the validator, the persister
and the coach (the library functions, in-process) on the cluster. Then every valid event is in
the history once, every invalid one a dead letter on its own partition with its code, nothing is
pending, the coach cache equals a rebuild from the history, and the API serves all of it.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.cluster import RedisCluster

from services.coach.app import run_coach
from services.coach.logic import canonical
from services.persister.app import run_persister
from services.validator.app import run_validator
from shared.connections import async_redis
from shared.models import COACH_STAGES, CoachDocument, PulseEvent, RunEvent
from shared.producer import Producer
from shared.settings import Settings
from shared.wire import DATA_FIELD
from tests.cluster import RedisClusterFixture
from tests.faults.load import EventMix, Offer
from tests.integration.api.helpers import started_app
from tests.integration.cluster.story import (
    DeadEntry,
    coach_diff,
    dead_entries,
    expected_code,
    forget,
    invalid_partition,
    law,
    misplaced,
    pending,
    quiescent,
    snapshot,
    suggestions,
)
from tests.integration.cluster.workers import cluster_settings

pytestmark = pytest.mark.integration

#: Offers of the mix: 1080 valid events of 6 projects over 100 runs, 120 invalid entries.
OFFERS = 1200


@pytest.fixture
def settings(redis_cluster: RedisClusterFixture, tmp_path: Path) -> Settings:
    # no trimming during the story: the status must count every entry published
    return cluster_settings(redis_cluster, tmp_path, trim_interval_s=3600.0)


@pytest.fixture
def rebuilt(settings: Settings) -> Settings:
    """Another namespace on the same cluster, for the coach rebuild."""
    return settings.model_copy(update={"namespace": f"{settings.namespace}r"})


@pytest.fixture
def client(
    redis_cluster: RedisClusterFixture, settings: Settings, rebuilt: Settings
) -> Iterator[RedisCluster]:
    """A blocking cluster client; both namespaces' keys are removed afterwards."""
    cluster = redis_cluster.client()
    try:
        yield cluster
    finally:
        cluster.close()
        forget(redis_cluster, settings.namespace, rebuilt.namespace)


def as_model(offer: Offer) -> RunEvent | PulseEvent:
    """The valid offer as the producers' model of its dialect."""
    assert offer.doc is not None
    model = PulseEvent if offer.doc.get("dialect") == "pulse" else RunEvent
    return model.model_validate(offer.doc)


async def publish(client: RedisCluster, settings: Settings, offers: list[Offer]) -> None:
    """Valid events as models through the asyncio `Producer`; invalid ones by plain XADD."""
    aclient = async_redis(settings)
    try:
        producer = Producer(aclient, settings.names, settings.taxonomy)
        await producer.publish_many([as_model(o) for o in offers if o.kind == "valid"])
    finally:
        await aclient.aclose()
    for offer in (o for o in offers if o.kind == "invalid"):
        client.xadd(invalid_partition(settings.names, offer).events, {DATA_FIELD: offer.body})


@asynccontextmanager
async def stages(settings: Settings) -> AsyncIterator[Callable[[], None]]:
    """Validator, persister and coach running in-process; yields a check that none crashed."""
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(run_validator(settings, stop)),
        asyncio.create_task(run_persister(settings, stop)),
        asyncio.create_task(run_coach(settings, stop)),
    ]

    def alive() -> None:
        for task in tasks:
            if task.done():
                task.result()  # surface a crash instead of waiting for the deadline
                raise AssertionError("a stage ended on its own")

    try:
        yield alive
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def until_quiescent(
    client: RedisCluster, settings: Settings, alive: Callable[[], None]
) -> None:
    """Poll (off the loop) until every group of every partition caught up and holds nothing."""
    deadline = asyncio.get_running_loop().time() + 60
    while not await asyncio.to_thread(quiescent, client, settings.names):
        alive()
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(
                f"not quiescent in 60 s: pending {pending(client, settings.names)}"
            )
        await asyncio.sleep(0.1)


async def test_both_dialects_and_invalid_entries_over_twelve_partitions_end_to_end(
    settings: Settings, rebuilt: Settings, client: RedisCluster
) -> None:
    names = settings.names
    # given both dialects over 100 runs (every partition has some) and invalid entries on many
    offers = [EventMix(settings.namespace, projects=6).offer(seq) for seq in range(OFFERS)]
    valid = [o for o in offers if o.kind == "valid"]
    invalid = [o for o in offers if o.kind == "invalid"]
    runs = {o.doc["run_id"] for o in valid if o.doc}
    assert {names.partition_for(r).index for r in runs} == set(range(12))
    assert len({invalid_partition(names, o).index for o in invalid}) == 12
    codes = {"invalid_reason_code:no_such_code", "invalid_stage:no_such_stage", "malformed_json"}
    assert {expected_code(o) for o in invalid} == codes
    await publish(client, settings, offers)
    # when the validator, the persister and the coach run on the cluster until all is handled
    async with stages(settings) as alive:
        await until_quiescent(client, settings, alive)
    # then every valid event is in the history once, every invalid one a dead letter with its
    # code (the fault tests' accounting), and nothing is pending in any group of any partition
    letters = dead_entries(client, names)
    figures = law({o.event_id: o for o in offers}, await snapshot(client, settings, letters), "e2e")
    assert figures.problems == [], figures.problems
    assert (figures.stored, figures.dead_lettered) == (len(valid), len(invalid))
    assert (figures.duplicates, figures.lost, figures.misrouted, figures.pending) == (0, 0, 0, 0)
    # and each dead letter is on the dead stream of the partition its entry was published to
    assert misplaced(names, letters) == []
    where = {d.letter.event_id: d.partition for d in letters}
    assert where == {o.event_id: invalid_partition(names, o).index for o in invalid}
    # and the coach cache equals a rebuild from the history
    assert await coach_diff(client, settings, rebuilt) == []
    # and the API serves the runs' events, the coach, the dead letters and the status
    await check_api(client, settings, valid, invalid, letters)


async def check_api(
    client: RedisCluster,
    settings: Settings,
    valid: list[Offer],
    invalid: list[Offer],
    letters: list[DeadEntry],
) -> None:
    async with started_app(settings) as (_, http):
        await check_runs(http, valid)
        await check_coach(http, client, settings, valid)
        await check_dead_letters(http, invalid, letters)
        await check_status(http, valid, invalid)


async def check_runs(http: httpx.AsyncClient, valid: list[Offer]) -> None:
    """GET /api/runs/{run}/events: each run's events, both dialects, from every partition."""
    by_run: dict[str, list[str]] = defaultdict(list)
    for offer in valid:
        assert offer.doc is not None
        by_run[offer.doc["run_id"]].append(offer.event_id)
    for run, events in by_run.items():
        response = await http.get(f"/api/runs/{run}/events", params={"limit": 1000})
        assert response.status_code == 200, response.text
        page = response.json()
        assert page["next_cursor"] is None
        assert sorted(e["event_id"] for e in page["events"]) == sorted(events), run


async def check_coach(
    http: httpx.AsyncClient, client: RedisCluster, settings: Settings, valid: list[Offer]
) -> None:
    """GET /api/projects/{id}/coach: the documents the coach worker cached."""
    projects = sorted({o.doc["project_id"] for o in valid if o.doc})
    for project in projects:
        response = await http.get(f"/api/projects/{project}/coach")
        assert response.status_code == 200, response.text
        stages = response.json()["stages"]
        docs = {s: CoachDocument.model_validate(d) for s, d in stages.items()}
        served = {s: canonical(d.suggestions) for s, d in docs.items()}
        cached = {s: suggestions(client, settings.names, project, s) for s in COACH_STAGES}
        assert served == {s: doc for s, doc in cached.items() if doc is not None}, project
        assert served, project


async def check_dead_letters(
    http: httpx.AsyncClient, invalid: list[Offer], letters: list[DeadEntry]
) -> None:
    """GET /api/dead-letters: every partition's, by partition-qualified id, with its code."""
    response = await http.get("/api/dead-letters", params={"limit": 1000})
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    codes = {o.event_id: expected_code(o) for o in invalid}
    expected = {f"{d.partition}:{d.entry_id}": [codes[d.letter.event_id or "?"]] for d in letters}
    assert {item["id"]: item["errors"] for item in items} == expected
    assert len(items) == len(invalid)
    one = next(iter(expected))
    detail = await http.get(f"/api/dead-letters/{one}")
    assert detail.status_code == 200 and detail.json()["id"] == one


async def check_status(http: httpx.AsyncClient, valid: list[Offer], invalid: list[Offer]) -> None:
    """GET /api/status: the totals over the 12 partitions."""
    response = await http.get("/api/status")
    assert response.status_code == 200, response.text
    status: dict[str, Any] = response.json()
    assert status["partitions"] == 12 and status["dead_letters"] == len(invalid)
    totals = {t["role"]: t for t in status["totals"]}
    lengths = {role: t["length"] for role, t in totals.items()}
    assert lengths == {"events": len(valid) + len(invalid), "valid": len(valid),
                       "dead": len(invalid)}  # fmt: skip
    groups = Counter()  # type: Counter[tuple[str, str]]
    for total in status["totals"]:
        for group in total["groups"]:
            groups[(total["role"], group["name"])] += 1
            assert (group["pending"], group["lag"], group["missing"]) == (0, 0, 0), group
    assert set(groups) == {("events", "validator"), ("valid", "persister"), ("valid", "coach")}
