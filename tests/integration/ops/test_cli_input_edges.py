"""Issue 11 on the command line: ids Redis cannot hold, the redrive guard (as the API's), the
group's help, and a redrive summary that names every reason family."""

from __future__ import annotations

import orjson
import pytest
import redis

from shared.settings import Settings
from tests.integration.ops.conftest import AddDead, Cli

pytestmark = pytest.mark.integration

TOO_BIG = "99999999999999999999-0"


@pytest.mark.parametrize(
    "args",
    [
        ("dlq", "show", TOO_BIG),
        ("dlq", "redrive", "--ids", f"1-0,{TOO_BIG}", "--yes"),
        ("dlq", "redrive", "--ids", "1-18446744073709551616", "--dry-run"),
    ],
)
def test_an_id_redis_cannot_hold_is_one_line_and_exit_2(
    add_dead: AddDead, cli: Cli, args: tuple[str, ...]
) -> None:
    # Given a dead letter, when an out-of-range id is typed
    add_dead(["malformed_json"])
    result = cli(*args)
    # Then one line naming the stable code, exit 2, no traceback
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: invalid_stream_id: ")
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "args",
    [
        ("dlq", "tail", "--reason", "false"),
        ("dlq", "redrive", "--reason", "Malformed_JSON", "--dry-run"),
        ("dlq", "purge", "--before", "1d", "--reason", "42", "--yes"),
    ],
)
def test_a_reason_filter_no_code_can_match_is_refused_as_the_api_does(
    add_dead: AddDead, cli: Cli, args: tuple[str, ...]
) -> None:
    # Given a dead letter, when a reason filter is not a code family
    add_dead(["malformed_json"])
    result = cli(*args)
    # Then one line and exit 2 (the API: 422), not an empty answer that looks like "none"
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: invalid_reason_filter: ")


def test_redrive_without_a_filter_is_refused_unless_all(
    add_dead: AddDead, cli: Cli, sync_client: redis.Redis, settings: Settings
) -> None:
    # Given two dead letters
    add_dead(["malformed_json"])
    add_dead(["not_utf8"])
    # When redriven with no filter at all, it is refused as the API refuses it
    refused = cli("dlq", "redrive", "--yes")
    assert refused.exit_code == 2
    assert refused.stderr.startswith("error: redrive_filter_required: ")
    assert sync_client.xlen(settings.names.dead) == 2
    # When --since 0s: a filter (younger than nothing), nothing moves
    zero = cli("dlq", "redrive", "--since", "0s", "--yes")
    assert zero.exit_code == 0, zero.output
    assert sync_client.xlen(settings.names.dead) == 2
    # When --all says so, everything moves
    every = cli("dlq", "redrive", "--all", "--yes")
    assert every.exit_code == 0, every.output
    assert sync_client.xlen(settings.names.dead) == 0
    # And its audit record says every dead letter was meant, not an empty filter
    newest = cli("dlq", "audit", "-n", "1")
    assert newest.stdout.rstrip().endswith('filter {"all":true}'), newest.stdout
    (doc,) = (
        orjson.loads(line) for line in cli("dlq", "audit", "--json", "-n", "1").stdout.splitlines()
    )
    assert doc["filter"] == {"all": True}


@pytest.mark.parametrize("count", ["0", "1001"])
def test_an_audit_page_out_of_bounds_is_one_line_as_the_api_says_it(cli: Cli, count: str) -> None:
    result = cli("dlq", "audit", "-n", count)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: invalid_parameter: limit must be between 1 and 1000"
    ]


def test_dlq_help_lists_every_subcommand(cli: Cli) -> None:
    result = cli("dlq", "--help")
    assert result.exit_code == 0
    head = result.stdout.split("Commands", 1)[0]
    for command in ("tail", "stats", "show", "redrive", "purge", "audit"):
        assert command in head, command


def test_the_dry_run_names_every_reason_family(add_dead: AddDead, cli: Cli) -> None:
    # Given dead letters of seven families (more than the old summary's five)
    families = [f"family_{n}" for n in range(7)]
    for family in families:
        add_dead([f"{family}:x"])
    # When a dry run of all of them
    result = cli("dlq", "redrive", "--all", "--dry-run")
    # Then the summary line and the dry-run line name all seven
    assert result.exit_code == 0, result.output
    summary, *_, dry = [line for line in result.stdout.splitlines() if "famil" in line]
    for family in families:
        assert f"{family} 1" in summary and f"{family} 1" in dry
