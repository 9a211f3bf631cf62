"""`runbus partitions`: every partition's tag, streams and slot, offline, as a table or JSON."""

from __future__ import annotations

import orjson
from redis.crc import key_slot
from typer.testing import CliRunner

from services.cli.main import app
from shared.names import Names, partition_of

WIDE = {"COLUMNS": "200", "TERMINAL_WIDTH": "200"}


def run(*args: str, partitions: int = 12) -> str:
    env = {**WIDE, "RUNBUS_NAMESPACE": "unit", "RUNBUS_PARTITIONS": str(partitions)}
    result = CliRunner().invoke(app, ["partitions", *args], env=env)
    assert result.exit_code == 0, result.output
    return result.output


def test_json_lists_every_partition_with_its_streams_and_slot() -> None:
    rows = orjson.loads(run("--json"))
    names = Names("unit", 12)
    assert [row["index"] for row in rows] == list(range(12))
    for row, partition in zip(rows, names.all_partitions, strict=True):
        assert row == {
            "index": partition.index,
            "tag": partition.tag,
            "events": partition.events,
            "valid": partition.valid,
            "dead": partition.dead,
            "slot": key_slot(partition.tag.strip("{}").encode()),
        }


def test_one_partition_is_the_namespace_tag() -> None:
    assert orjson.loads(run("--json", partitions=1)) == [
        {"index": 0, "tag": "{unit}", "events": "{unit}:events", "valid": "{unit}:valid",
         "dead": "{unit}:dead", "slot": key_slot(b"unit")}
    ]  # fmt: skip


def test_a_run_id_selects_the_partition_its_events_go_to() -> None:
    for run_id in ("exp-42", "run-7f3a", "ünïcødé-7"):
        (row,) = orjson.loads(run("--run-id", run_id, "--json"))
        assert row["index"] == partition_of(run_id, 12)


def test_the_table_has_a_row_per_partition() -> None:
    table = run()
    for partition in Names("unit", 12).all_partitions:
        assert partition.events in table and partition.dead in table
    assert "slot" in table.splitlines()[1]
