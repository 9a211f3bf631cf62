"""`runbus dlq ...` and `runbus status` as an operator types them, against the real Redis."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
import redis

from shared.settings import Settings
from shared.wire import REDRIVEN_FROM_FIELD
from tests.conftest import REDIS_URL
from tests.integration.ops.conftest import AddDead, Cli, entries
from tests.unit.ops.builders import brewslm_body

pytestmark = pytest.mark.integration


def json_lines(text: str) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in text.splitlines() if line.strip()]


def test_tail_prints_one_line_per_dead_letter_and_filters(add_dead: AddDead, cli: Cli) -> None:
    # Given dead letters of two reasons
    a = add_dead(["invalid_reason_code:train_gpu_on_fire"])
    b = add_dead(["malformed_json"], b"{nope")
    # When tailed
    result = cli("dlq", "tail")
    # Then one line each, with time, id, codes, stage/type, project/run and summary
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert (
        f" {a} invalid_reason_code:train_gpu_on_fire validator/training p7/exp-42 loss" in lines[0]
    )
    assert f" {b} malformed_json validator/? - malformed_json" in lines[1]
    # And --reason keeps a family, --json gives one object per line for piping
    result = cli("dlq", "tail", "--reason", "invalid_reason_code", "--json")
    (doc,) = json_lines(result.stdout)
    assert doc["id"] == a
    assert doc["original"] == brewslm_body().decode()
    assert doc["original_base64"] is False


def test_tail_since_and_limit(add_dead: AddDead, cli: Cli) -> None:
    now = datetime.now(UTC)
    add_dead(["malformed_json"], at=now - timedelta(days=2))
    recent = [add_dead(["malformed_json"]) for _ in range(3)]
    docs = json_lines(cli("dlq", "tail", "--since", "1h", "--json").stdout)
    assert [d["id"] for d in docs] == recent
    docs = json_lines(cli("dlq", "tail", "-n", "2", "--json").stdout)
    assert [d["id"] for d in docs] == recent[1:]
    bad = cli("dlq", "tail", "--since", "yesterday")
    assert bad.exit_code == 2
    assert "not a duration" in bad.output


def test_tail_json_gives_binary_originals_as_base64(add_dead: AddDead, cli: Cli) -> None:
    add_dead(["malformed_json"], b"\xff\xfe")
    (doc,) = json_lines(cli("dlq", "tail", "--json").stdout)
    assert (doc["original"], doc["original_base64"]) == ("//4=", True)


def test_tail_follow_prints_a_dead_letter_added_after_it_started(
    add_dead: AddDead, settings: Settings
) -> None:
    # Given `runbus dlq tail --follow --json` running, having printed the one dead letter there
    first = add_dead(["malformed_json"])
    env = {**os.environ, "RUNBUS_REDIS_URL": REDIS_URL, "RUNBUS_NAMESPACE": settings.namespace}
    runbus = str(Path(sys.executable).parent / "runbus")
    proc = subprocess.Popen(
        [runbus, "dlq", "tail", "--follow", "--json", "--reason", "malformed_json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    lines: queue.Queue[bytes] = queue.Queue()
    stdout = proc.stdout
    assert stdout is not None

    def read() -> None:
        for line in iter(stdout.readline, b""):
            lines.put(line)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        assert orjson.loads(lines.get(timeout=20))["id"] == first
        # When dead letters arrive, one of another reason first
        add_dead(["persist_rejected"])
        second = add_dead(["malformed_json"])
        # Then the new matching one is printed (within a bounded wait), and nothing else
        assert orjson.loads(lines.get(timeout=20))["id"] == second
        assert lines.empty()
    finally:
        proc.kill()
        proc.wait(10)
        reader.join(10)


def test_stats_counts_by_reason_and_source(add_dead: AddDead, cli: Cli, settings: Settings) -> None:
    add_dead(["invalid_reason_code:a"])
    add_dead(["invalid_reason_code:b", "missing_reason_code"])
    add_dead(["persist_rejected"], stage="persister", source_stream=settings.names.valid)
    result = cli("dlq", "stats", "--json")
    assert result.exit_code == 0, result.output
    stats = orjson.loads(result.stdout)
    assert stats["length"] == 3
    assert stats["by_family"][0] == {"key": "invalid_reason_code", "count": 2}
    assert {c["key"]: c["count"] for c in stats["by_stage"]} == {"validator": 2, "persister": 1}
    text = cli("dlq", "stats").stdout
    assert f"{settings.names.dead}: 3 dead letters" in text
    assert "missing_reason_code" in text


def test_show_prints_one_dead_letter_in_full(add_dead: AddDead, cli: Cli) -> None:
    entry = add_dead(["invalid_reason_code:train_gpu_on_fire"], original_fields={"k": b"v"})
    text = cli("dlq", "show", entry).stdout
    assert f"id                {entry}" in text
    assert "orig:k            v" in text
    assert '  "reason_code": "train_gpu_on_fire",' in text  # the original, pretty-printed
    doc = orjson.loads(cli("dlq", "show", entry, "--json").stdout)
    assert doc["original"] == brewslm_body().decode()
    missing = cli("dlq", "show", "1-0")
    assert missing.exit_code == 1
    assert "no dead letter 1-0" in missing.output
    assert cli("dlq", "show", "last").exit_code == 2


def test_redrive_asks_moves_and_reports(
    add_dead: AddDead, cli: Cli, sync_client: redis.Redis, settings: Settings
) -> None:
    names = settings.names
    # Given two dead letters for an unknown code and one malformed
    a = add_dead(["invalid_reason_code:x"])
    b = add_dead(["invalid_reason_code:y"])
    add_dead(["malformed_json"])
    # A dry run lists them and moves nothing
    dry = cli("dlq", "redrive", "--reason", "invalid_reason_code", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "2 dead letters match (invalid_reason_code 2)" in dry.stdout
    assert a in dry.stdout and b in dry.stdout
    assert "dry run: would move 2" in dry.stdout
    assert sync_client.exists(names.events) == 0
    # Answering no moves nothing either
    declined = cli("dlq", "redrive", "-r", "invalid_reason_code", input="n\n")
    assert declined.exit_code == 1
    assert sync_client.exists(names.events) == 0
    # Answering yes moves both
    done = cli("dlq", "redrive", "-r", "invalid_reason_code", "--rate", "0", input="y\n")
    assert done.exit_code == 0, done.output
    assert f"moved 2 to {names.events}; already gone 0" in done.stdout
    assert [f[REDRIVEN_FROM_FIELD].decode() for _, f in entries(sync_client, names.events)] == [
        a,
        b,
    ]
    # And the audit names the operator
    audits = [f for _, f in entries(sync_client, names.redrive_audit)]
    assert [(f[b"operator"], f[b"dry_run"], f[b"count"]) for f in audits] == [
        (b"test-op", b"1", b"0"),
        (b"test-op", b"0", b"2"),
    ]


def test_redrive_by_ids_from_stdin_and_to_another_stream(
    add_dead: AddDead, cli: Cli, sync_client: redis.Redis, settings: Settings
) -> None:
    a = add_dead(["malformed_json"])
    add_dead(["malformed_json"])
    c = add_dead(["malformed_json"])
    target = "{" + settings.namespace + "}:replay"
    result = cli("dlq", "redrive", "--ids", "-", "--to", target, "--yes", input=f"{a}\n{c}\n")
    assert result.exit_code == 0, result.output
    assert "note: 2 came from another stream" in result.stdout
    assert [f[REDRIVEN_FROM_FIELD].decode() for _, f in entries(sync_client, target)] == [a, c]
    refused = cli("dlq", "redrive", "--all", "--to", settings.names.dead, "--yes")
    assert refused.exit_code == 2
    assert "into itself" in refused.output


def test_audit_lists_who_did_what(
    add_dead: AddDead, cli: Cli, sync_client: redis.Redis, settings: Settings
) -> None:
    add_dead(["malformed_json"])
    cli("dlq", "redrive", "--reason", "malformed_json", "--dry-run", operator="carol")
    cli("dlq", "redrive", "--reason", "malformed_json", "--yes", operator="dave")
    sync_client.xadd(settings.names.redrive_audit, {b"not": b"an audit record"})
    lines = cli("dlq", "audit").stdout.splitlines()
    assert len(lines) == 2
    assert f"redrive by dave: 1 of 1 to {settings.names.events}" in lines[0]
    assert "redrive (dry run) by carol: 0 of 1" in lines[1]
    (doc,) = json_lines(cli("dlq", "audit", "--json", "-n", "2").stdout)
    assert (doc["operator"], doc["filter"]) == ("dave", {"reasons": ["malformed_json"]})


def test_purge_asks_then_deletes_older_matching(
    add_dead: AddDead, cli: Cli, sync_client: redis.Redis, settings: Settings
) -> None:
    now = datetime.now(UTC)
    add_dead(["malformed_json"], at=now - timedelta(days=9))
    keep_code = add_dead(["invalid_reason_code:x"], at=now - timedelta(days=9))
    keep_new = add_dead(["malformed_json"])
    declined = cli("dlq", "purge", "--before", "7d", "-r", "malformed_json", input="n\n")
    assert declined.exit_code == 1
    assert "Delete 1 dead letter for good? [y/N]" in declined.stdout  # singular: one letter
    assert sync_client.xlen(settings.names.dead) == 3
    done = cli("dlq", "purge", "--before", "7d", "-r", "malformed_json", "--yes")
    assert done.exit_code == 0, done.output
    assert "deleted 1 of 1" in done.stdout
    assert [i for i, _ in entries(sync_client, settings.names.dead)] == [keep_code, keep_new]
    assert cli("dlq", "purge").exit_code == 2  # --before is required


def test_status_on_an_empty_and_a_populated_namespace(
    add_dead: AddDead, cli: Cli, sync_client: redis.Redis, settings: Settings
) -> None:
    names = settings.names
    empty = cli("status")
    assert empty.exit_code == 0, empty.output
    assert "events/validator" in empty.stdout and "absent" in empty.stdout
    # Given an incoming entry delivered to a validator that has not acknowledged it
    sync_client.xadd(names.events, {b"__data__": b"{}"})
    sync_client.xgroup_create(names.events, "validator", id="0")
    sync_client.xreadgroup("validator", "v-1", {names.events: ">"}, count=10)
    add_dead(["malformed_json"])
    doc = orjson.loads(cli("status", "--json").stdout)
    (events, _valid, dead) = doc["streams"]
    assert (events["length"], events["groups"][0]["pending"]) == (1, 1)
    assert events["groups"][0]["consumers"][0]["name"] == "v-1"
    assert (dead["length"], doc["dead_letters"]) == (1, 1)
    text = cli("status").stdout
    assert "events/validator/v-1" in text
    lines = text.splitlines()
    assert lines[-3:-1] == ["dead letters: 1", "dead-letter retention: no sweep reported yet"]
    assert lines[-1].startswith("redis memory: ")


def test_status_shows_the_actions_stream_and_its_platform_group(
    cli: Cli, sync_client: redis.Redis, settings: Settings
) -> None:
    names = settings.names
    # Given no action request yet, the stream and the platform's group show as absent
    empty = cli("status").stdout
    assert re.search(rf"│ actions +│ {re.escape(names.actions)} +│ absent", empty), empty
    assert re.search(r"│ actions/platform +│ absent", empty), empty
    # Given two requests, one delivered to the platform and not acknowledged
    for _ in range(2):
        sync_client.xadd(names.actions, {b"__data__": b"{}"})
    sync_client.xgroup_create(names.actions, "platform", id="0")
    sync_client.xreadgroup("platform", "p-1", {names.actions: ">"}, count=1)
    # then the table and the JSON show the length, lag, pending and consumer
    text = cli("status").stdout
    assert re.search(rf"│ actions +│ {re.escape(names.actions)} +│ +2 │", text), text
    assert re.search(r"│ actions/platform +│ +1 │ +\S+ │ +1 │", text), text  # lag, lag age, pending
    assert "actions/platform/p-1" in text
    (actions,) = orjson.loads(cli("status", "--json").stdout)["outlets"]
    assert (actions["role"], actions["name"], actions["length"]) == ("actions", names.actions, 2)
    assert [(g["name"], g["lag"], g["pending"]) for g in actions["groups"]] == [("platform", 1, 1)]
