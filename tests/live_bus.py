"""A whole running bus for the dashboard's browser tests: ``runbus run all`` plus the demo.

The system runs as real processes (`tests.integration.e2e.helpers.System`) under a namespace
of its own, with a SQLite history in its own folder and an API token (so the dashboard can be
signed in to). The demo's workload (seeded: the same projects and runs every time) is
published through the real producer path, and the bus is ready when every event has left the
incoming stream, every valid one is in the history and every coach stage of every demo project
has its document.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis

from services.demo.io import publish_workload
from services.demo.logic import Item, nested_runs, projects_of, workload
from shared.connections import async_redis
from shared.models import COACH_STAGES
from shared.names import Names
from shared.settings import Settings
from tests.conftest import REDIS_URL, free_port
from tests.integration.e2e.helpers import System, system_env

TOKEN = "browser-test-token"
DEMO_SEED = 14
DEMO_PROJECTS = 2
DEMO_SIZE = 60
READY_TIMEOUT_S = 90.0


@dataclass
class LiveBus:
    """A running bus with the demo's workload processed."""

    base_url: str
    namespace: str
    token: str
    #: The demo's project ids.
    projects: list[int]
    #: Each autopilot run of the demo and the runs nested under it.
    runs: dict[str, list[str]]
    system: System
    valid_events: int = 0
    invalid_entries: int = 0
    workdir: Path = field(default_factory=Path)

    def url(self, path: str) -> str:
        """The absolute URL of `path` on the bus's API."""
        return self.base_url + path

    @property
    def names(self) -> Names:
        """The bus's Redis names."""
        return Names(self.namespace)

    @property
    def settings(self) -> Settings:
        """Settings of a client of this bus (a producer, a library call)."""
        return Settings(redis_url=REDIS_URL, namespace=self.namespace)


def _wait(what: str, check: object, system: System, timeout: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    assert callable(check)
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    pytest.fail(f"live bus: {what} not within {timeout}s\n{system.output()[-3000:]}")


def _publish(settings: Settings, items: list[Item]) -> None:
    async def go() -> None:
        client = async_redis(settings)
        try:
            await publish_workload(client, settings, items)
        finally:
            await client.aclose()

    asyncio.run(go())


def _coached(http: httpx.Client, projects: list[int]) -> bool:
    for project in projects:
        reply = http.get(f"/api/projects/{project}/coach")
        if reply.status_code != 200:
            return False
        stages = reply.json()["stages"]
        if any(not stages.get(stage, {}).get("suggestions") for stage in COACH_STAGES):
            return False
    return True


@dataclass
class _Drained:
    client: redis.Redis
    names: Names

    def __call__(self) -> bool:
        for stream, group in ((self.names.events, "validator"), (self.names.valid, "persister")):
            groups = {g["name"].decode(): g for g in self.client.xinfo_groups(stream)}
            info = groups.get(group)
            if info is None or info["lag"] != 0 or info["pending"] != 0:
                return False
        return True


def clean_namespace(client: redis.Redis, namespace: str) -> None:
    """Remove every key of `namespace`."""
    for pattern in Names(namespace).key_patterns:
        keys = list(client.scan_iter(match=pattern, count=1000))
        if keys:
            client.delete(*keys)


@contextlib.contextmanager
def start_live_bus(workdir: Path, namespace: str) -> Iterator[LiveBus]:
    """``runbus run all`` for `namespace` with the demo's workload processed; stopped after."""
    env = system_env(namespace, REDIS_URL, f"sqlite:///{workdir / 'history.db'}", free_port(),
                     workdir)  # fmt: skip
    # Acknowledged entries stay an hour: the search tests look up incoming entries by id, and
    # a trim (every 30 s) between publishing and searching would race them on a loaded machine.
    env |= {"RUNBUS_API_TOKEN": TOKEN, "RUNBUS_OPERATOR": "browser-tests",
            "RUNBUS_STREAM_MIN_AGE_S": "3600"}  # fmt: skip
    system = System(env, workdir)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        system.start()
        _wait("readiness", system.ready, system)
        settings = Settings(redis_url=REDIS_URL, namespace=namespace)
        items = workload(DEMO_PROJECTS, DEMO_SIZE, 0.1, first_project=1, seed=DEMO_SEED)
        _publish(settings, items)
        bus = LiveBus(
            system.http.base_url.__str__().rstrip("/"), namespace, TOKEN, projects_of(items),
            nested_runs(items), system, sum(i.event is not None for i in items),
            sum(i.raw is not None for i in items), workdir,
        )  # fmt: skip
        _wait("the pipeline draining", _Drained(client, settings.names), system)
        _wait("every coach stage", lambda: _coached(system.http, bus.projects), system)
        yield bus
    finally:
        system.close()
        clean_namespace(client, namespace)
        client.close()
