"""Stories: `runbus publish` from an argument, a file and stdin, with client-side validation."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from typer.testing import CliRunner

from services.cli.main import app
from shared.settings import Settings
from tests.conftest import REDIS_URL
from tests.integration.producer.helpers import entry_ids, seqs, stream_docs
from tests.unit.contract.events import DROP, brewslm, pulse

pytestmark = pytest.mark.integration

ENTRY_ID = re.compile(r"^\d+-\d+$")
RUNBUS = Path(sys.executable).with_name("runbus")


@pytest.fixture
def env(settings: Settings) -> dict[str, str]:
    """The environment that points the CLI at this test's namespace."""
    return {"RUNBUS_NAMESPACE": settings.namespace, "RUNBUS_REDIS_URL": REDIS_URL}


def numbered(n: int) -> list[dict[str, object]]:
    return [brewslm(severity="info", reason_code=DROP, payload={"seq": i}) for i in range(n)]


def ids_of(stdout: str) -> list[str]:
    lines = stdout.splitlines()
    assert all(ENTRY_ID.match(line) for line in lines), stdout
    return lines


def stream_ids(client: redis.Redis, settings: Settings) -> list[str]:
    return entry_ids(client, settings.names.events)


def test_publish_one_json_argument_prints_its_entry_id(
    env: dict[str, str], settings: Settings, sync_client: redis.Redis
) -> None:
    result = CliRunner().invoke(app, ["publish", json.dumps(pulse())], env=env)
    assert result.exit_code == 0, result.output
    assert ids_of(result.stdout) == stream_ids(sync_client, settings)
    (doc,) = stream_docs(sync_client, settings.names.events)
    assert doc["event_type"] == "run.failed"
    assert doc["event_id"]


@pytest.mark.parametrize("layout", ["ndjson", "array", "pretty"])
def test_publish_a_file(
    layout: str, env: dict[str, str], settings: Settings, sync_client: redis.Redis, tmp_path: Path
) -> None:
    # given a file of events: NDJSON, a JSON array, or one indented event
    events = numbered(1 if layout == "pretty" else 3)
    path = tmp_path / "events.json"
    text = {
        "ndjson": "\n".join(json.dumps(e) for e in events) + "\n",
        "array": json.dumps(events),
        "pretty": json.dumps(events[0], indent=2),
    }[layout]
    path.write_text(text, encoding="utf-8")
    # when it is published
    result = CliRunner().invoke(app, ["publish", str(path)], env=env)
    # then one entry id per event is printed, in order
    assert result.exit_code == 0, result.output
    assert ids_of(result.stdout) == stream_ids(sync_client, settings)
    assert seqs(sync_client, settings.names.events) == list(range(len(events)))


def test_publish_ndjson_on_stdin_with_the_installed_command(
    env: dict[str, str], settings: Settings, sync_client: redis.Redis
) -> None:
    # given the real console script, NDJSON on stdin (blank lines allowed)
    lines = [json.dumps(e) for e in numbered(5)]
    stdin = "\n".join(lines[:2]) + "\n\n" + "\n".join(lines[2:]) + "\n"
    for argv in ([str(RUNBUS), "publish"], [str(RUNBUS), "publish", "-"]):
        proc = subprocess.run(
            argv,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **env},
        )
        assert proc.returncode == 0, proc.stderr
        assert len(ids_of(proc.stdout)) == 5
    assert seqs(sync_client, settings.names.events) == [*range(5), *range(5)]


def test_an_invalid_event_exits_non_zero_with_its_codes(
    env: dict[str, str], settings: Settings, sync_client: redis.Redis
) -> None:
    bad = brewslm(stage="gold_set", reason_code="training_nan_loss")
    result = CliRunner().invoke(app, ["publish", json.dumps(bad)], env=env)
    assert result.exit_code == 1
    assert "invalid_stage:gold_set" in result.stderr
    assert "invalid_reason_code:training_nan_loss" in result.stderr
    assert result.stdout == ""
    assert sync_client.xlen(settings.names.events) == 0


def test_a_mixed_batch_publishes_the_valid_events_and_names_the_bad_ones(
    env: dict[str, str], settings: Settings, sync_client: redis.Redis
) -> None:
    lines = [json.dumps(numbered(1)[0]), json.dumps(pulse(severity="info")), "42"]
    result = CliRunner().invoke(app, ["publish"], input="\n".join(lines), env=env)
    assert result.exit_code == 1
    assert len(ids_of(result.stdout)) == 1
    assert "event 1: rejected: severity_mismatch:run.failed" in result.stderr
    assert "event 2: rejected: schema_violation:$" in result.stderr
    assert seqs(sync_client, settings.names.events) == [0]


def test_no_validate_sends_an_invalid_event_anyway(
    env: dict[str, str], settings: Settings, sync_client: redis.Redis
) -> None:
    bad = brewslm(stage="gold_set")
    result = CliRunner().invoke(app, ["publish", "--no-validate", json.dumps(bad)], env=env)
    assert result.exit_code == 0, result.output
    assert ids_of(result.stdout) == stream_ids(sync_client, settings)
    (doc,) = stream_docs(sync_client, settings.names.events)
    assert doc["stage"] == "gold_set"


def test_unreadable_input_exits_2(env: dict[str, str], tmp_path: Path) -> None:
    broken = CliRunner().invoke(app, ["publish", '{"stage": '], env=env)
    assert broken.exit_code == 2
    assert broken.stderr.startswith("error: malformed_json: ")
    missing = CliRunner().invoke(app, ["publish", str(tmp_path / "nope.json")], env=env)
    assert missing.exit_code == 2
    assert missing.stderr.startswith("error: unreadable_source: ")
