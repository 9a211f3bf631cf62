"""A live API for the contract fuzz: `runbus run api` on a free port, real Redis, SQLite.

Seeded first with a few events of both dialects and a few dead letters (and their ids are
known to nobody but the fuzzer's own discovery), in the test's own namespace: the fuzzer may
call the redrive route, which then moves this namespace's dead letters only.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from services.history import open_store
from shared.settings import Settings
from shared.wire import Fields
from tests.conftest import REDIS_URL, free_port, wait_for
from tests.integration.history.factory import at, brewslm, pulse
from tests.unit.ops.builders import dead_fields

TOKEN = "fuzz-token"


@dataclass(frozen=True)
class LiveApi:
    """A running API: where, and the bearer token it wants."""

    base_url: str
    token: str


async def _seed_history(settings: Settings) -> None:
    store = open_store(settings)
    await store.open()
    await store.migrate()
    envelopes = [brewslm("run-a", at(i), stage="training") for i in range(3)]
    envelopes += [pulse("run-b", at(10 + i), parent_run_id="run-a") for i in range(2)]
    await store.insert_batch(envelopes)
    await store.close()


def _seed_dead_letters(client: redis.Redis, settings: Settings) -> None:
    letters: list[Fields] = [
        dead_fields(["invalid_reason_code:train_gpu_on_fire"]),
        dead_fields(["malformed_json"], b"{nope"),
        dead_fields(["not_utf8"], b"\xff\xfe"),
    ]
    for fields in letters:
        client.xadd(settings.names.dead, fields)  # type: ignore[arg-type]


def _environment(settings: Settings, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNBUS_")}
    env.update(
        RUNBUS_REDIS_URL=REDIS_URL,
        RUNBUS_NAMESPACE=settings.namespace,
        RUNBUS_DATABASE_URL=settings.database_url,
        RUNBUS_API_HOST="127.0.0.1",
        RUNBUS_API_PORT=str(port),
        RUNBUS_API_TOKEN=TOKEN,
        RUNBUS_API_READ_TOKEN_REQUIRED="true",
        RUNBUS_OPERATOR="fuzzer",
    )
    return env


@pytest.fixture
async def seeded(settings: Settings, sync_client: redis.Redis) -> AsyncIterator[Settings]:
    """The test's namespace and history with a few events and dead letters in them."""
    await _seed_history(settings)
    _seed_dead_letters(sync_client, settings)
    yield settings


@pytest.fixture
def live_api(seeded: Settings, tmp_path: Path) -> Iterator[LiveApi]:
    """`runbus run api` serving the seeded namespace on a free loopback port."""
    port = free_port()
    log = (tmp_path / "api.log").open("wb")
    runbus = Path(sys.executable).with_name("runbus")
    proc = subprocess.Popen(
        [str(runbus), "run", "api"], env=_environment(seeded, port), stdout=log, stderr=log
    )
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"the API exited: {(tmp_path / 'api.log').read_text()}")
        try:
            return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(ready, timeout=20)
        yield LiveApi(base, TOKEN)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
