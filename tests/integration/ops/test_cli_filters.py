"""`runbus dlq tail/redrive/purge --stage/--source/--before` as an operator types them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
import redis

from shared.settings import Settings
from tests.integration.ops.conftest import AddDead, Cli, entries

pytestmark = pytest.mark.integration


def tail_ids(cli: Cli, *args: str) -> list[str]:
    result = cli("dlq", "tail", "--json", *args)
    assert result.exit_code == 0, result.output
    return [orjson.loads(line)["id"] for line in result.stdout.splitlines() if line.strip()]


def seed(add_dead: AddDead, settings: Settings) -> tuple[str, str, str]:
    day_ago = datetime.now(UTC) - timedelta(days=1)
    valid = settings.names.valid
    old = add_dead(["persist_rejected"], at=day_ago, stage="persister", source_stream=valid)
    validator = add_dead(["malformed_json"])
    persister = add_dead(["persist_rejected"], stage="persister", source_stream=valid)
    return old, validator, persister


def test_tail_filters_by_stage_source_and_before(
    add_dead: AddDead, cli: Cli, settings: Settings
) -> None:
    old, validator, persister = seed(add_dead, settings)
    assert tail_ids(cli, "--stage", "persister") == [old, persister]
    assert tail_ids(cli, "--source", "events") == [validator]
    assert tail_ids(cli, "--stage", "persister", "--before", "1h") == [old]
    assert tail_ids(cli, "--source", "valid", "--since", "1h") == [persister]


def test_redrive_and_purge_take_the_same_filters(
    add_dead: AddDead, cli: Cli, sync_client: redis.Redis, settings: Settings
) -> None:
    old, validator, persister = seed(add_dead, settings)
    # a dry run of a stage and source filter lists just those
    dry = cli("dlq", "redrive", "--stage", "persister", "--source", "valid", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert old in dry.stdout and persister in dry.stdout and validator not in dry.stdout
    # a stage alone is a filter: no --all needed
    done = cli("dlq", "redrive", "--stage", "validator", "--yes", "--rate", "0")
    assert done.exit_code == 0, done.output
    assert "moved 1" in done.stdout
    # a purge by stage deletes only that stage's older letters
    purged = cli("dlq", "purge", "--before", "1h", "--stage", "persister", "--yes")
    assert purged.exit_code == 0, purged.output
    assert "deleted 1 of 1" in purged.stdout
    assert [i for i, _ in entries(sync_client, settings.names.dead)] == [persister]


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("dlq", "tail", "--stage", "api"), "invalid_stage_filter"),
        (("dlq", "tail", "--source", "dead"), "invalid_source_filter"),
        (("dlq", "redrive", "--source", "{runbus}:events", "--yes"), "invalid_source_filter"),
        (("dlq", "purge", "--before", "1d", "--stage", "nope", "--yes"), "invalid_stage_filter"),
    ],
)
def test_a_stage_or_source_that_is_none_is_one_line_and_exit_2(
    cli: Cli, args: tuple[str, ...], code: str
) -> None:
    result = cli(*args)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {code}: ") and len(result.stderr.splitlines()) == 1
