"""A live API for the contract fuzz: `runbus run api` on a free port, real Redis, SQLite.

Seeded first, in the test's own namespace, with the runs, dead letters and coach documents
whose ids the fuzzer's dictionaries name (``schemathesis.toml``, read here so the ids are said
once): events of both dialects, three dead letters, a document per coach stage. The fuzzer may
call the redrive and purge routes, which then act on this namespace's dead letters only.
"""

from __future__ import annotations

import tomllib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from services.history import open_store
from shared.models import COACH_STAGES, CoachDocument, NavigateAction, Suggestion
from shared.settings import Settings
from shared.wire import Fields
from tests.integration.history.factory import at, brewslm, pulse
from tests.live_api import LiveApi, run_api
from tests.unit.ops.builders import dead_fields

TOKEN = "fuzz-token"
CONFIG = Path(__file__).with_name("schemathesis.toml")


def dictionary(name: str) -> list[Any]:
    """The values of one of the fuzzer's dictionaries (the ids the seed must hold)."""
    config = tomllib.loads(CONFIG.read_text(encoding="utf-8"))
    return list(config["dictionaries"][name]["values"])


async def _seed_history(settings: Settings) -> None:
    (project,) = dictionary("seeded-projects")
    parent, child = dictionary("seeded-runs")
    store = open_store(settings)
    await store.open()
    await store.migrate()
    envelopes = [brewslm(parent, at(i), project_id=project, stage="training") for i in range(3)]
    envelopes += [
        pulse(child, at(10 + i), project_id=project, parent_run_id=parent) for i in range(2)
    ]
    await store.insert_batch(envelopes)
    await store.close()


def _seed_dead_letters(client: redis.Redis, settings: Settings) -> None:
    letters: list[Fields] = [
        dead_fields(["invalid_reason_code:train_gpu_on_fire"]),
        dead_fields(["malformed_json"], b"{nope"),
        dead_fields(["not_utf8"], b"\xff\xfe"),
    ]
    for entry_id, fields in zip(dictionary("seeded-dead-letters"), letters, strict=True):
        client.xadd(settings.names.dead, fields, id=entry_id)  # type: ignore[arg-type]


def _seed_coach(client: redis.Redis, settings: Settings) -> None:
    """One document (version 1, one suggestion) per coach stage of every seeded project."""
    suggestion = Suggestion(
        severity="warning", title="Fix it", body="Because.",
        action=NavigateAction(label="Go", params={"target": "somewhere"}),
    )  # fmt: skip
    for project in dictionary("seeded-projects"):
        for stage in COACH_STAGES:
            doc = CoachDocument(
                project_id=project, stage=stage, version=1, source_id="1-0",
                computed_at=datetime(2026, 5, 1, tzinfo=UTC), taxonomy_version="tx-fuzz",
                suggestions=[suggestion],
            )  # fmt: skip
            client.set(settings.names.coach_key(project, stage), doc.model_dump_json())
        client.sadd(settings.names.coach_projects, str(project))


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
    _seed_coach(sync_client, settings)
    yield settings


@pytest.fixture
def live_api(seeded: Settings, tmp_path: Path) -> Iterator[LiveApi]:
    """`runbus run api` serving the seeded namespace on a free loopback port."""
    with run_api(seeded.namespace, tmp_path, database_url=seeded.database_url, env=FUZZ_ENV) as api:
        yield api
