"""`runbus partitions`: where producers write, for producers that do not use the Python client.

It prints, for the configured namespace and ``RUNBUS_PARTITIONS``, each partition's index, hash
tag, its streams and their Redis Cluster key slot, without connecting to Redis. With
``--run-id`` only the partition of that run (the routing rule, `shared.names.partition_of`).
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer
from redis.crc import key_slot
from rich.console import Console
from rich.table import Table

from shared.names import Names, Partition, StreamKind
from shared.settings import Settings


def register(app: typer.Typer) -> None:
    """Add `runbus partitions` to the app."""
    app.command("partitions")(partitions)


def partition_row(partition: Partition) -> dict[str, Any]:
    """One partition as printed: index, tag, one stream per role, the slot they all share."""
    streams = {kind.value: partition.stream(kind) for kind in StreamKind}
    return {
        "index": partition.index,
        "tag": partition.tag,
        **streams,
        "slot": key_slot(partition.events.encode()),
    }


def rows(names: Names, run_id: str | None = None) -> list[dict[str, Any]]:
    """Every partition's row, or only the one `run_id` routes to."""
    chosen = names.all_partitions if run_id is None else (names.partition_for(run_id),)
    return [partition_row(p) for p in chosen]


def partitions(
    run_id: Annotated[
        str | None,
        typer.Option("--run-id", help="Only the partition this run's events are written to."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output, for piping.")] = False,
) -> None:
    """Each partition's index, hash tag, incoming/valid/dead streams and key slot: a producer
    writes an event of run R to the incoming stream of partition crc32(R) mod P."""
    table_rows = rows(Settings().names, run_id)
    if as_json:
        typer.echo(orjson.dumps(table_rows).decode())
        return
    table = Table(*(str(key) for key in table_rows[0]))
    for row in table_rows:
        table.add_row(*(str(value) for value in row.values()))
    console = Console(highlight=False)
    if not console.is_terminal:  # a pipe gets whole rows, not rich's default 80 columns
        console = Console(highlight=False, width=max(console.width, 160))
    console.print(table)
