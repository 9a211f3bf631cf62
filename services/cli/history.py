"""`runbus history ...`: read run and project timelines, prune old history.

Output: a table on a terminal; piped, one JSON object per event per line (the next-page cursor
goes to stderr); ``--json``: one JSON document ``{"events": [...], "next_cursor": ...}``.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, TypeVar

import orjson
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from services.cli.refusals import refuse, refusing_bad_input
from services.history.base import HistoryRow, HistoryStore, Page, StoreUnavailable
from services.history.family import CHILDREN_PAGE, MAX_CHILDREN, RunFamily
from services.history.params import ALL_SEVERITIES, PROJECT_PAGE, check_limit, project_filter
from services.history.reads import (
    NotFound,
    history_store,
    parse_duration,
    read_family,
    read_project,
    read_run,
)
from shared.errors import InputError
from shared.settings import Settings
from shared.taxonomy import STAGES

T = TypeVar("T")

history_app = typer.Typer(
    name="history", help="Read the append-only run history.", no_args_is_help=True
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
CursorOpt = Annotated[
    str | None, typer.Option(help="Continue after this cursor (printed by the previous page).")
]


def register(app: typer.Typer) -> None:
    """Add the commands of this module to the app."""
    app.add_typer(history_app)


def with_history_store(settings: Settings, work: Callable[[HistoryStore], Awaitable[T]]) -> T:
    """`work` on an opened history store (`runbus history ...`, `runbus dlq prune-archive`):
    an unreachable database or a refused input is one line and its stable code."""

    async def main() -> T:
        async with history_store(settings) as store:
            return await work(store)

    try:
        return asyncio.run(main())
    except StoreUnavailable as exc:
        refuse("history_unavailable", str(exc))
    except InputError as exc:  # a cursor is only checked by the store it came from
        refuse(exc.code, exc.message)
    except NotFound as exc:
        # One line, as the API's 404 says it; exit 1: the question was fine, the answer is no.
        refuse(exc.code, str(exc), status=1)


@history_app.command("run")
def run_timeline(
    run_id: Annotated[str, typer.Argument(help="The run whose timeline to show.")],
    children: Annotated[
        bool, typer.Option("--children", help="Include child runs (parent_run_id), recursively.")
    ] = False,
    limit: Annotated[
        int | None, typer.Option(help="One page of at most N events (default: the whole run).")
    ] = None,
    cursor: CursorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A run's whole timeline in event-time order, both dialects."""
    settings = Settings()
    with refusing_bad_input():
        if limit is not None:
            check_limit(limit)
    page = with_history_store(
        settings, lambda s: read_run(s, run_id, children=children, cursor=cursor, limit=limit)
    )
    _show(page, as_json, title=f"run {run_id}" + (" (with children)" if children else ""))


@history_app.command("project")
def project_timeline(
    project_id: Annotated[int, typer.Argument(help="Project id.")],
    stage: Annotated[str | None, typer.Option(help=f"BrewSLM stage: {', '.join(STAGES)}.")] = None,
    severity: Annotated[
        str | None, typer.Option(help=f"Severity: {', '.join(ALL_SEVERITIES)}.")
    ] = None,
    reason: Annotated[str | None, typer.Option(help="Reason code.")] = None,
    event_type: Annotated[str | None, typer.Option(help="Pulse event type.")] = None,
    since: Annotated[
        str | None, typer.Option(help="From this time: ISO 8601, or a duration ago (2h, 7d).")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Before this time: ISO 8601, or a duration ago.")
    ] = None,
    limit: Annotated[int, typer.Option(help="Events per page.")] = PROJECT_PAGE,
    cursor: CursorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One page of a project's events in event-time order, filtered."""
    settings = Settings()
    with refusing_bad_input():
        check_limit(limit)
        filters = project_filter(
            stage=stage,
            severity=severity,
            reason=reason,
            event_type=event_type,
            since=since,
            until=until,
            taxonomy=settings.taxonomy,
        )
    page = with_history_store(
        settings, lambda s: read_project(s, project_id, filters, cursor=cursor, limit=limit)
    )
    _show(page, as_json, title=f"project {project_id}")


@history_app.command("family")
def family(
    run_id: Annotated[str, typer.Argument(help="The run whose parents and children to show.")],
    limit: Annotated[
        int, typer.Option(help=f"Direct children listed at most (1 to {MAX_CHILDREN}).")
    ] = CHILDREN_PAGE,
    as_json: JsonOpt = False,
) -> None:
    """A run's parent chain (root first) and its direct children, with their time spans."""
    with refusing_bad_input():
        check_limit(limit, maximum=MAX_CHILDREN)
    found = with_history_store(Settings(), lambda s: read_family(s, run_id, children_limit=limit))
    if as_json:
        typer.echo(found.model_dump_json())
        return
    Console(highlight=False, soft_wrap=True).print(family_tree(found))


@history_app.command("prune")
def prune(
    older_than: Annotated[
        str, typer.Option("--older-than", help="Remove history older than this (e.g. 90d).")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Drop history older than a duration (PostgreSQL: whole monthly partitions)."""
    try:
        age = parse_duration(older_than)
    except (ValueError, OverflowError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--older-than") from exc
    result = with_history_store(Settings(), lambda s: s.prune(age))
    if as_json:
        typer.echo(orjson.dumps(result.to_dict()).decode())
        return
    typer.echo(f"cutoff {result.cutoff.isoformat()}: {result.rows_deleted} events removed")
    for name in result.partitions_dropped:
        typer.echo(f"dropped partition {name}")


def _show(page: Page, as_json: bool, title: str) -> None:
    if as_json:
        typer.echo(orjson.dumps(page.to_dict()).decode())
        return
    if not sys.stdout.isatty():
        for row in page.rows:
            typer.echo(orjson.dumps(row.to_dict()).decode())
        if page.next_cursor:
            typer.echo(f"next_cursor {page.next_cursor}", err=True)
        return
    console = Console()
    console.print(_table(page.rows, title))
    if page.next_cursor:
        console.print(f"more: --cursor {page.next_cursor}")


_CHAIN_ENDS = {"missing": "parent not in the history", "cycle": "parents loop", "limit": "more"}


def _label(run_id: str, first: datetime | None, last: datetime | None, style: str = "") -> Text:
    # Run ids are user text: a Text is never parsed as markup.
    span = (
        "(no stored event)"
        if first is None or last is None
        else (f"{first:%Y-%m-%d %H:%M:%S} .. {last:%Y-%m-%d %H:%M:%S}")
    )
    return Text(run_id, style=style) + Text(f"  {span}", style="dim")


def family_tree(found: RunFamily) -> Tree:
    """The family as a tree: the top of the known chain down to the run, then its children."""
    labels = [_label(r.run_id, r.first_ts, r.last_ts) for r in reversed(found.ancestors)]
    if found.chain_end in _CHAIN_ENDS:
        labels.insert(0, Text(f"... ({_CHAIN_ENDS[found.chain_end]})", style="dim"))
    labels.append(_label(found.run_id, found.first_ts, found.last_ts, "bold"))
    top = node = Tree(labels[0])
    for label in labels[1:]:
        node = node.add(label)
    for child in found.children:
        node.add(_label(child.run_id, child.first_ts, child.last_ts))
    if found.more_children:
        node.add(Text(f"... more (--limit, {MAX_CHILDREN} at most)", style="dim"))
    return top


def _table(rows: list[HistoryRow], title: str) -> Table:
    table = Table("time (UTC)", "run", "what", "severity", "reason", "text", title=title)
    colours = {"error": "red", "critical": "bold red", "warning": "yellow", "warn": "yellow"}
    for row in rows:
        what = row.event_type if row.dialect == "pulse" else row.stage
        text = row.message if row.dialect == "pulse" else row.summary
        colour = colours.get(row.severity, "")
        table.add_row(
            row.ts.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
            row.run_id,
            what or "",
            f"[{colour}]{row.severity}[/]" if colour else row.severity,
            row.reason_code or "",
            text or "",
        )
    return table
