"""`runbus coach ...`: show and rebuild coach suggestions."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from services.coach import reads
from services.coach.io import CoachStore
from services.coach.rebuild import RebuildReport, rebuild
from shared.connections import async_redis
from shared.models import COACH_STAGES, CoachDocument
from shared.settings import Settings

coach_app = typer.Typer(
    name="coach", help="Coach Mode suggestions: show the cache, rebuild it from history.",
    no_args_is_help=True,
)  # fmt: skip
_COLOURS = {"critical": "red", "warning": "yellow", "info": "cyan"}


def register(app: typer.Typer) -> None:
    """Add the commands of this module to the app."""
    app.add_typer(coach_app, name="coach")


@coach_app.command("show")
def show(
    project_id: Annotated[int, typer.Argument(help="Project id.")],
    stage: Annotated[
        str | None, typer.Argument(help=f"Coach stage: {', '.join(COACH_STAGES)}. Default: all.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the cached JSON.")] = False,
) -> None:
    """Show the cached suggestions of a project (one stage, or every stage)."""
    if stage is not None and stage not in COACH_STAGES:
        typer.echo(f"unknown coach stage {stage!r}: one of {', '.join(COACH_STAGES)}", err=True)
        raise typer.Exit(2)
    docs = asyncio.run(_load(Settings(), project_id, stage))
    if not docs:
        what = f"project {project_id}" + (f" stage {stage}" if stage else "")
        typer.echo(f"no coach suggestions cached for {what}", err=True)
        raise typer.Exit(1)
    if as_json:
        body: Any = docs[0].model_dump(mode="json") if stage else {
            d.stage: d.model_dump(mode="json") for d in docs
        }  # fmt: skip
        typer.echo(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())
        return
    _print(docs)


async def _load(settings: Settings, project_id: int, stage: str | None) -> list[CoachDocument]:
    client = async_redis(settings)
    try:
        if stage is not None:
            doc = await reads.get_document(client, settings.names, project_id, stage)
            return [doc] if doc else []
        docs = await reads.get_project(client, settings.names, project_id)
        return list(docs.values()) if docs else []
    finally:
        await client.aclose()


def _print(docs: list[CoachDocument]) -> None:
    console = Console()
    for doc in docs:
        console.print(
            f"[bold]project {doc.project_id} · {doc.stage}[/] version {doc.version} · "
            f"{doc.computed_at.isoformat()} · source {doc.source_id or '-'}"
        )
        if not doc.suggestions:
            console.print("  nothing to suggest")
            continue
        table = Table("severity", "title", "action", "params")
        for s in doc.suggestions:
            colour = _COLOURS[s.severity]
            params = orjson.dumps(s.action.params).decode()
            table.add_row(
                f"[{colour}]{s.severity}[/]", s.title, f"{s.action.kind}: {s.action.label}", params
            )
        console.print(table)


@coach_app.command("rebuild")
def rebuild_cmd(
    project: Annotated[
        int | None, typer.Option("--project", help="Only this project (default: all).")
    ] = None,
    reset: Annotated[
        bool,
        typer.Option(
            "--reset",
            help="Drop each rebuilt project's state first (stop the coach worker while it runs).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Recompute the coach cache from the history alone (same result as the live worker)."""
    report = asyncio.run(_rebuild(Settings(), project, reset))
    summary = report.to_dict()
    if as_json:
        typer.echo(orjson.dumps(summary).decode())
        return
    if report.migrated:
        typer.echo(f"moved {report.migrated} key(s) of the old coach key format")
    typer.echo(
        f"rebuilt {summary['projects']} project(s) from {summary['events']} event(s): "
        f"{summary['written']} document(s) changed, {summary['unchanged']} unchanged"
    )


async def _rebuild(settings: Settings, project: int | None, reset: bool) -> RebuildReport:
    from services.history import open_store  # the history backend loads only when needed

    store = open_store(settings)
    client = async_redis(settings)
    try:
        await store.open()
        coach = CoachStore(client, settings.names)
        return await rebuild(
            coach, settings.taxonomy.version, store.iter_events(project),
            project_id=project, reset=reset,
        )  # fmt: skip
    finally:
        await store.close()
        await client.aclose()
