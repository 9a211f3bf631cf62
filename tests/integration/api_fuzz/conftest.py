"""A live API for the contract fuzz: `runbus run api` on a free port, real Redis, SQLite.

Seeded first with a few events of both dialects and a few dead letters (and their ids are
known to nobody but the fuzzer's own discovery), in the test's own namespace: the fuzzer may
call the redrive route, which then moves this namespace's dead letters only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis

from services.history import open_store
from shared.settings import Settings
from shared.wire import Fields
from tests.integration.history.factory import at, brewslm, pulse
from tests.live_api import LiveApi, run_api
from tests.unit.ops.builders import dead_fields

TOKEN = "fuzz-token"


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


#: What the fuzzed API runs with beyond `run_api`'s defaults: every route behind the token.
FUZZ_ENV = {
    "RUNBUS_API_TOKEN": TOKEN,
    "RUNBUS_API_READ_TOKEN_REQUIRED": "true",
    "RUNBUS_OPERATOR": "fuzzer",
}


@pytest.fixture
async def seeded(settings: Settings, sync_client: redis.Redis) -> AsyncIterator[Settings]:
    """The test's namespace and history with a few events and dead letters in them."""
    await _seed_history(settings)
    _seed_dead_letters(sync_client, settings)
    yield settings


@pytest.fixture
def live_api(seeded: Settings, tmp_path: Path) -> Iterator[LiveApi]:
    """`runbus run api` serving the seeded namespace on a free loopback port."""
    with run_api(seeded.namespace, tmp_path, database_url=seeded.database_url, env=FUZZ_ENV) as api:
        yield api
