"""Stories through the whole pipeline and the command line: producers -> validator -> persister
(history) + coach (cache); then the cache is lost and `runbus coach rebuild` restores it from the
history alone, equal to what the live worker had computed; `runbus coach show` prints it."""

from __future__ import annotations

import asyncio
import os
import random
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import orjson
import pytest
import redis.asyncio as aredis
from typer.testing import CliRunner

from services.cli.main import app as cli
from services.history import store_for_url
from services.persister.app import run_persister
from services.validator.app import run_validator
from shared.models import COACH_STAGES, PulseEvent, RunEvent
from shared.settings import Settings
from shared.wire import event_body
from tests.conftest import POSTGRES_DSN
from tests.integration.coach.conftest import RunningCoach, eventually, publish
from tests.integration.coach.test_worker import cache_snapshot, cached_canonical, mixed_events
from tests.unit.coach.builders import event, pulse

pytestmark = pytest.mark.integration
RUNBUS = str(Path(sys.executable).with_name("runbus"))


@pytest.fixture(params=["sqlite", "postgres"])
async def history_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A history database of each backend (PostgreSQL: a schema of its own, dropped after)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'history.db'}"
        return
    schema = f"coach_{uuid.uuid4().hex[:12]}"
    try:
        conn = await asyncpg.connect(POSTGRES_DSN, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:  # fail loudly: never skip a missing server
        pytest.fail(f"integration tests need PostgreSQL at {POSTGRES_DSN}: {exc}")
    yield f"{POSTGRES_DSN}?search_path={schema}"
    await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    await conn.close()


async def runbus(settings: Settings, *args: str) -> tuple[int, str, str]:
    """Run the real `runbus` command with this test's settings in its environment."""
    env = {
        **os.environ,
        "RUNBUS_REDIS_URL": settings.redis_url,
        "RUNBUS_NAMESPACE": settings.namespace,
        "RUNBUS_DATABASE_URL": settings.database_url,
        "RUNBUS_LOG_LEVEL": "WARNING",
        "COLUMNS": "250",  # rich wraps at 80 columns when not on a terminal
    }
    proc = await asyncio.create_subprocess_exec(
        RUNBUS, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def runbus_in_process(settings: Settings, *args: str) -> tuple[int, str]:
    """The same command in this process (a thread: the command runs its own event loop)."""
    env = {
        "RUNBUS_REDIS_URL": settings.redis_url,
        "RUNBUS_NAMESPACE": settings.namespace,
        "RUNBUS_DATABASE_URL": settings.database_url,
        "COLUMNS": "250",
    }
    result = await asyncio.to_thread(CliRunner().invoke, cli, list(args), env=env)
    return result.exit_code, result.output


async def history_count(url: str) -> int:
    store = store_for_url(url)
    try:
        await store.open()
        return await store.count()
    except Exception:  # the persister may not have created the schema yet
        return -1
    finally:
        await store.close()


async def test_rebuild_from_history_equals_the_live_cache(
    settings: Settings,
    history_url: str,
    async_client: aredis.Redis,
    start_coach: Callable[..., RunningCoach],
) -> None:
    settings = settings.model_copy(update={"database_url": history_url})
    projects = (5, 6)
    # given producers' events (plus Pulse and uncoached ones), shuffled: arrival order is random
    events: list[RunEvent] = mixed_events(1500, projects=projects, seed=23)
    extras: list[RunEvent | PulseEvent] = [
        pulse("run.failed"),
        event("deployment_drift_detected", t=3, project=5),
    ]
    bodies = [event_body(e) for e in [*events, *extras]]
    random.Random(9).shuffle(bodies)
    async with async_client.pipeline(transaction=False) as pipe:
        for raw in bodies:
            pipe.xadd(settings.names.events, {b"__data__": raw})
        await pipe.execute()
    # when the validator, the persister and the coach run
    stop = asyncio.Event()
    others = [
        asyncio.create_task(run_validator(settings, stop, "validator-t")),
        asyncio.create_task(run_persister(settings, stop, "persister-t")),
    ]
    coach = start_coach()
    try:
        await coach.handled(len(bodies), timeout=60)

        async def persisted() -> bool:
            return await history_count(history_url) == len(bodies)

        await eventually(persisted, timeout=60, what="history complete")
    finally:
        stop.set()
        await asyncio.gather(*others)
    await coach.finish()
    live = {p: await cached_canonical(async_client, settings, p) for p in projects}
    versions = {p: await cache_snapshot(async_client, settings, p) for p in projects}
    assert any(orjson.loads(live[5]["training"])), "the story should leave something to say"
    # when the coach's state and cache are lost, and rebuilt from the history alone
    names = settings.names
    lost = [names.coach_projects]
    for p in projects:
        lost += [names.coach_state(p), names.coach_meta(p)]
        lost += [names.coach_key(p, s) for s in COACH_STAGES]
    await async_client.delete(*lost)
    code, out, err = await runbus(settings, "coach", "rebuild", "--json")
    # then every stage of every project says exactly what the live worker said
    assert code == 0, err
    report = orjson.loads(out)
    assert report["projects"] == len(projects) and report["events"] == len(bodies)
    for p in projects:
        assert await cached_canonical(async_client, settings, p) == live[p]
    # and rebuilding again over a complete cache bumps no version
    rebuilt = {p: await cache_snapshot(async_client, settings, p) for p in projects}
    code, out = await runbus_in_process(settings, "coach", "rebuild", "--project", "5", "--json")
    assert code == 0, out
    assert orjson.loads(out)["written"] == 0
    assert {p: await cache_snapshot(async_client, settings, p) for p in projects} == rebuilt
    assert set(versions) == set(rebuilt)


async def test_coach_show_prints_the_cached_suggestions(
    settings: Settings, async_client: aredis.Redis, start_coach: Callable[..., RunningCoach]
) -> None:
    # given a project whose training ran out of memory, with a thin gold set
    coach = start_coach()
    payload = {"target": "gold_set", "rows": 78}
    events = [
        event("training_oom", t=1, project=31, payload={"batch_size": 32}),
        event("annotation_rows_promoted", t=2, project=31, payload=payload),
    ]
    await publish(async_client, settings, events)
    await coach.handled(2)
    # when ops ask for one stage as JSON
    code, out, err = await runbus(settings, "coach", "show", "31", "gold_set", "--json")
    assert code == 0, err
    doc = orjson.loads(out)
    # then they get the cached document, as stored
    assert doc["project_id"] == 31 and doc["stage"] == "gold_set" and doc["version"] == 1
    assert doc["suggestions"][0]["title"] == "Your gold set has 78 rows"
    assert doc["suggestions"][0]["action"]["params"]["rows"] == 222
    # and every stage as a table
    code, out = await runbus_in_process(settings, "coach", "show", "31")
    assert code == 0, out
    assert "Training ran out of GPU memory" in out and "Your gold set has 78 rows" in out
    for stage in COACH_STAGES:
        assert f"project 31 · {stage}" in out
    # and an unknown project or stage is an error, not an empty answer
    assert (await runbus_in_process(settings, "coach", "show", "999"))[0] == 1
    assert (await runbus_in_process(settings, "coach", "show", "31", "deployment"))[0] == 2
