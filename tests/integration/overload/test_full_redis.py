"""A full Redis: at ``maxmemory`` (noeviction) XADD answers OOM. Producers spool and retry, the
API answers 503 with Retry-After, the stages keep draining, and once the stalled persister goes
every event is in the history once.

On a private redis-server (free loopback port) with a small ``maxmemory``: the machine's
Redis is never filled.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis

from services.coach.app import run_coach
from services.history import open_store
from services.persister.app import run_persister
from services.validator.app import run_validator
from shared.producer import BestEffortProducer
from shared.settings import Settings
from tests.conftest import RedisServer
from tests.integration.api.helpers import started_app
from tests.unit.contract.events import pulse

pytestmark = pytest.mark.integration

MAXMEMORY = 6 * 1024 * 1024
DEADLINE_S = 90.0


def full_redis(server: RedisServer) -> redis.Redis:
    client = redis.Redis(port=server.port)
    client.config_set("maxmemory", MAXMEMORY)
    client.config_set("maxmemory-policy", "noeviction")
    return client


def used(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


@dataclass
class Answers:
    """What the API answered to the events posted."""

    accepted: list[str] = field(default_factory=list)  # event ids
    statuses: dict[int, int] = field(default_factory=dict)
    retry_after: set[str] = field(default_factory=set)

    def count(self, response: httpx.Response) -> None:
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        if response.status_code == 202:
            self.accepted.append(response.json()["event_id"])
        elif response.status_code == 503:
            assert response.json()["error"] == "redis_full", response.text
            self.retry_after.add(response.headers["retry-after"])


async def says_full(http: httpx.AsyncClient) -> bool:
    """Both health and metrics report the full Redis."""
    ready = (await http.get("/readyz")).json()
    metrics = (await http.get("/metrics")).text
    return bool(ready["redis"] and ready["redis_full"]) and "runbus_redis_full 1.0" in metrics


async def post(http: httpx.AsyncClient, answers: Answers, n: int) -> None:
    doc = pulse(run_id=f"api-{n % 7}", event_type="stage.completed", severity="info")
    answers.count(await http.post("/api/events", json=doc | {"details": {"seq": n}}))


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Callable[[Settings], Awaitable[httpx.AsyncClient]]]:
    async with contextlib.AsyncExitStack() as stack:

        async def start(settings: Settings) -> httpx.AsyncClient:
            _, client = await stack.enter_async_context(started_app(settings))
            return client

        yield start


async def test_a_full_redis_refuses_new_events_loses_none_and_recovers(
    redis_server: Callable[..., RedisServer],
    settings: Settings,
    api: Callable[[Settings], Awaitable[httpx.AsyncClient]],
) -> None:
    server = redis_server()
    admin = full_redis(server)
    tuned = settings.model_copy(
        update={"redis_url": server.url, "trim_interval_s": 0.3, "batch_size": 200}
    )
    # The persister ran before and its database stalled: its group is there, it reads nothing.
    # (A group cannot be created while Redis is full: XGROUP CREATE is refused with OOM.)
    admin.xgroup_create(tuned.names.valid, "persister", id="0", mkstream=True)
    http = await api(tuned)
    stop, persister_stop = asyncio.Event(), asyncio.Event()
    stages = [asyncio.create_task(run(tuned, stop)) for run in (run_validator, run_coach)]
    producer = BestEffortProducer(
        server.url, tuned.names, tuned.spool_path, taxonomy=tuned.taxonomy, max_backoff_s=0.2
    )
    answers, queued = Answers(), 0
    try:
        # Fill: the persister is stalled, so the valid stream keeps every accepted event.
        deadline = time.monotonic() + DEADLINE_S
        n = 0
        while answers.statuses.get(503, 0) < 20 or producer.counters.spooled == 0:
            assert time.monotonic() < deadline, f"Redis never filled: {used(admin)} bytes"
            batch = [
                pulse(run_id=f"be-{i % 11}", event_type="stage.completed", severity="info")
                for i in range(n, n + 200)
            ]
            queued += sum(producer.publish(doc | {"details": {"seq": i}}) for i, doc in
                          enumerate(batch, n))  # fmt: skip
            for i in range(n, n + 20):
                await post(http, answers, i)
            n += 200
            await asyncio.sleep(0.01)
        assert 500 not in answers.statuses, answers.statuses
        assert answers.retry_after == {"5"}
        # Memory hovers at the limit while the stages move entries: each surface is read while
        # the producers keep it full, until it says so (within the deadline).
        while not await says_full(http):
            assert time.monotonic() < deadline, (await http.get("/readyz")).json()
            await post(http, answers, n)
            n += 1
        assert used(admin) >= MAXMEMORY * 0.95
        assert all(not task.done() for task in stages), "a stage stopped while Redis was full"

        # Recover: the persister goes, the valid stream is trimmed, memory frees, the spool drains.
        persister = asyncio.create_task(run_persister(tuned, persister_stop))
        stages.append(persister)
        flushed = await asyncio.to_thread(producer.flush, DEADLINE_S)
        assert flushed, f"the spool did not drain ({producer.spool_depth} left)"
        assert producer.counters.dropped == 0
        expected = queued + len(answers.accepted)
        store = open_store(tuned)
        await store.open()
        try:
            while (count := await store.count()) < expected:
                assert time.monotonic() < deadline + DEADLINE_S, f"{count} of {expected} stored"
                await asyncio.sleep(0.2)
            assert count == expected  # each once: none lost, none twice
        finally:
            await store.close()
        assert not (await http.get("/readyz")).json()["redis_full"]
    finally:
        producer.close(timeout=1)
        stop.set()
        persister_stop.set()
        await asyncio.gather(*stages, return_exceptions=True)
        admin.close()


async def test_a_stage_started_on_a_full_redis_finds_its_group_and_drains(
    redis_server: Callable[..., RedisServer], settings: Settings
) -> None:
    server = redis_server()
    admin = full_redis(server)
    tuned = settings.model_copy(update={"redis_url": server.url, "batch_size": 200})
    names = tuned.names
    admin.xgroup_create(names.events, "validator", id="0", mkstream=True)
    for group in ("persister", "coach"):
        admin.xgroup_create(names.valid, group, id="0", mkstream=True)
    body = b'{"run_id": "r", "event_type": "stage.completed", "severity": "info", '
    added = 0
    try:  # fill the incoming stream until Redis refuses
        while True:
            n = added
            admin.xadd(names.events, {"__data__": body + b'"created_at": "2024-05-01T12:00:00Z"}'})
            added = n + 1
    except redis.exceptions.OutOfMemoryError:
        pass
    with pytest.raises(redis.exceptions.OutOfMemoryError):  # XGROUP CREATE too, group or not
        admin.xgroup_create(names.events, "validator", id="0")
    stop = asyncio.Event()
    validator = asyncio.create_task(run_validator(tuned, stop))
    try:
        deadline = time.monotonic() + DEADLINE_S
        while admin.xlen(names.valid) + admin.xlen(names.dead) < added:
            assert not validator.done(), "the validator stopped"
            assert time.monotonic() < deadline, "the validator did not drain the full Redis"
            await asyncio.sleep(0.1)
        assert admin.xlen(names.valid) + admin.xlen(names.dead) == added  # each moved once
    finally:
        stop.set()
        await validator
        admin.close()
