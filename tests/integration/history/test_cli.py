"""`runbus history ...` and `runbus db ...` as an operator types them."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
import redis
from typer.testing import CliRunner

from services.cli.main import app
from services.history import store_for_url
from shared.settings import Settings
from shared.wire import DATA_FIELD, envelope_body
from tests.conftest import POSTGRES_DSN, REDIS_URL, free_port, wait_for
from tests.integration.history.conftest import in_thread
from tests.integration.history.factory import at, brewslm, pulse

pytestmark = pytest.mark.integration


def runbus(url: str, *args: str) -> Any:
    """Run `runbus ARGS` against the history at `url`; returns the click result."""
    env = {"RUNBUS_DATABASE_URL": url, "RUNBUS_LOG_JSON": "true"}
    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


def seed(url: str) -> None:
    """Store a small family of events (runs in a thread: the CLI owns the event loop)."""
    in_thread(lambda: _seed(url))


async def _seed(url: str) -> None:
    store = store_for_url(url)
    await store.open()
    await store.migrate()
    now = datetime.now(UTC)
    await store.insert_batch(
        [
            brewslm("exp-1", at(0), event_id="a"),
            pulse("run-2", at(1), event_id="b", parent_run_id="exp-1"),
            brewslm("exp-3", at(2), event_id="c", parent_run_id="run-2", severity="error",
                    reason_code="training_oom"),
            brewslm("exp-1", at(3), event_id="d"),
            brewslm("exp-9", now - timedelta(hours=1), event_id="recent", stage="eval"),
            brewslm("exp-9", now - timedelta(days=400), event_id="ancient"),
        ]
    )  # fmt: skip
    await store.close()


def event_ids(output: str) -> list[str]:
    return [e["event_id"] for e in orjson.loads(output)["events"]]


def test_db_migrate_applies_once(backend_url: str) -> None:
    # When an operator migrates twice
    first = runbus(backend_url, "db", "migrate")
    second = runbus(backend_url, "db", "migrate")
    # Then the schema is created once
    assert first.exit_code == 0 and "applied migrations: 1" in first.output
    assert second.exit_code == 0 and "up to date" in second.output


def test_history_run_shows_the_whole_family_in_order(backend_url: str) -> None:
    # Given a run with a Pulse child and a BrewSLM grandchild
    seed(backend_url)
    # When the run is read, alone and with children
    alone = runbus(backend_url, "history", "run", "exp-1", "--json")
    family = runbus(backend_url, "history", "run", "exp-1", "--children", "--json")
    # Then in event-time order, both dialects
    assert event_ids(alone.output) == ["a", "d"]
    assert event_ids(family.output) == ["a", "b", "c", "d"]
    assert orjson.loads(family.output)["next_cursor"] is None
    # And piped without --json, one JSON object per line
    lines = runbus(backend_url, "history", "run", "exp-1", "--children").output.splitlines()
    assert [orjson.loads(line)["event_id"] for line in lines] == ["a", "b", "c", "d"]


def test_history_run_pages_with_a_cursor(backend_url: str) -> None:
    seed(backend_url)
    # When the family is read two at a time
    first = orjson.loads(runbus(backend_url, "history", "run", "exp-1", "--children", "--limit",
                                "2", "--json").output)  # fmt: skip
    cursor = first["next_cursor"]
    rest = runbus(
        backend_url, "history", "run", "exp-1", "--children", "--cursor", cursor, "--json"
    )
    # Then the second page continues where the first stopped
    assert [e["event_id"] for e in first["events"]] == ["a", "b"]
    assert event_ids(rest.output) == ["c", "d"]
    # And a forged cursor is a usage error
    bad = CliRunner().invoke(app, ["history", "run", "exp-1", "--cursor", "nope"],
                             env={"RUNBUS_DATABASE_URL": backend_url})  # fmt: skip
    assert bad.exit_code == 2 and "cursor" in bad.output


def test_history_project_filters(backend_url: str) -> None:
    seed(backend_url)
    # When / then: each filter narrows the project's events
    assert event_ids(runbus(backend_url, "history", "project", "7", "--json").output) == [
        "ancient", "a", "b", "c", "d", "recent",
    ]  # fmt: skip
    args = ("history", "project", "7", "--json")
    assert event_ids(runbus(backend_url, *args, "--severity", "error").output) == ["c"]
    assert event_ids(runbus(backend_url, *args, "--reason", "training_oom").output) == ["c"]
    assert event_ids(runbus(backend_url, *args, "--stage", "eval").output) == ["recent"]
    assert event_ids(runbus(backend_url, *args, "--event-type", "stage.completed").output) == ["b"]
    assert event_ids(runbus(backend_url, *args, "--since", "2h").output) == ["recent"]
    window = runbus(backend_url, *args, "--since", at(1).isoformat(), "--until", at(3).isoformat())
    assert event_ids(window.output) == ["b", "c"]
    page = orjson.loads(runbus(backend_url, *args, "--limit", "4").output)
    assert len(page["events"]) == 4 and page["next_cursor"]
    bad = CliRunner().invoke(app, ["history", "project", "7", "--since", "yesterday"],
                             env={"RUNBUS_DATABASE_URL": backend_url})  # fmt: skip
    assert bad.exit_code == 2


def test_history_prune(backend_url: str) -> None:
    seed(backend_url)
    # When history older than 90 days is pruned
    result = runbus(backend_url, "history", "prune", "--older-than", "90d", "--json")
    # Then only the 400-day-old event is gone (its month is long over on PostgreSQL too)
    assert result.exit_code == 0, result.output
    doc = orjson.loads(result.output)
    assert doc["rows_deleted"] >= 1
    left = runbus(backend_url, "history", "project", "7", "--json").output
    assert "ancient" not in event_ids(left) and "recent" in event_ids(left)


def test_an_unreachable_database_is_reported(tmp_path: Path) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/test"
    result = CliRunner().invoke(app, ["history", "run", "exp-1"], env={"RUNBUS_DATABASE_URL": url})
    assert result.exit_code == 2 and "error: history_unavailable: " in result.output


def test_a_history_nothing_wrote_yet_has_no_such_run(tmp_path: Path) -> None:
    # Given a SQLite history the persister never created
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    # When a run is asked for
    result = CliRunner().invoke(app, ["history", "run", "exp-1"], env={"RUNBUS_DATABASE_URL": url})
    # Then the run is unknown (exit 1), not "no such table" (exit 2)
    assert result.exit_code == 1, result.output
    assert "error: run_not_found: " in result.output


def test_db_grant_gives_the_service_role_its_privileges(pg_url: str) -> None:
    # Given a migrated schema and a service role
    role = f"hist_cli_{uuid.uuid4().hex[:8]}"
    schema = pg_url.rsplit("search_path=", 1)[1]
    admin(f'CREATE ROLE "{role}" NOLOGIN')
    try:
        assert runbus(pg_url, "db", "migrate").exit_code == 0
        # When the owner grants the service role
        result = runbus(pg_url, "db", "grant", "--role", role)
        assert result.exit_code == 0, result.output
        # Then that role holds INSERT and SELECT on the history, nothing else
        privileges = admin(
            "SELECT privilege_type FROM information_schema.role_table_grants "
            "WHERE grantee = $1 AND table_schema = $2 AND table_name = 'history'",
            role,
            schema,
        )
        assert sorted(p[0] for p in privileges) == ["INSERT", "SELECT"]
        # And a role that does not exist is an error
        missing = runbus(pg_url, "db", "grant", "--role", f"{role}_nope")
        assert missing.exit_code == 2 and "grant failed" in missing.output
    finally:
        admin(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin(f'DROP OWNED BY "{role}"')
        admin(f'DROP ROLE "{role}"')


def admin(sql: str, *args: Any) -> list[Any]:
    """Run SQL as the test database's superuser."""

    async def run() -> list[Any]:
        conn = await asyncpg.connect(POSTGRES_DSN)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    return in_thread(run)


def test_runbus_run_persister_drains_on_sigterm(
    settings: Settings, sync_client: redis.Redis, tmp_path: Path
) -> None:
    # Given envelopes on the valid stream
    for i in range(20):
        env = brewslm("exp-70", at(i), event_id=f"s{i}")
        sync_client.xadd(settings.names.valid, {DATA_FIELD: envelope_body(env)})
    env = {
        **os.environ,
        "RUNBUS_REDIS_URL": REDIS_URL,
        "RUNBUS_NAMESPACE": settings.namespace,
        "RUNBUS_DATABASE_URL": settings.database_url,
        "RUNBUS_BLOCK_MS": "100",
    }
    # When `runbus run persister` runs, then gets SIGTERM
    runbus_bin = Path(sys.executable).parent / "runbus"
    proc = subprocess.Popen([str(runbus_bin), "run", "persister"], env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:

        def stored() -> bool:
            group = sync_client.xinfo_groups(settings.names.valid)
            return bool(group) and group[0]["pending"] == 0 and group[0]["entries-read"] == 20

        wait_for(stored, timeout=30)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    # Then it stored everything and exited cleanly
    assert code == 0, proc.stderr.read().decode() if proc.stderr else ""
    db = sqlite3.connect(settings.database_url.removeprefix("sqlite:///"))
    assert db.execute("SELECT count(DISTINCT event_id) FROM history").fetchone() == (20,)
    db.close()
