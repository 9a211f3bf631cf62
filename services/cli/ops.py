"""`runbus demo` and `runbus docs ...`: try the system, and describe it.

(`runbus status` lives with the dead-letter commands in `services.cli.dlq`.)
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Annotated

import orjson
import typer

from services.demo.io import DemoResult, publish_workload
from services.demo.logic import Item, autopilot_runs, nested_runs, projects_of, workload
from shared.connections import async_redis
from shared.settings import Settings


def register(app: typer.Typer) -> None:
    """Add `runbus demo` and `runbus docs ...` to the app."""
    app.command("demo")(demo)
    docs = typer.Typer(name="docs", help="Documents describing runbus.", no_args_is_help=True)
    docs.command("asyncapi")(asyncapi)
    app.add_typer(docs, name="docs")


async def _next_project(settings: Settings) -> int:
    from services.coach.reads import known_projects

    client = async_redis(settings)
    try:
        known = await known_projects(client, settings.names)
    finally:
        await client.aclose()
    return (max(known) + 1) if known else 1


async def _publish(settings: Settings, items: list[Item], rate: float) -> DemoResult:
    client = async_redis(settings)
    try:
        return await publish_workload(client, settings, items, rate)
    finally:
        await client.aclose()


def demo(
    projects: Annotated[int, typer.Option(min=1, max=1000, help="Projects to simulate.")] = 3,
    size: Annotated[
        int, typer.Option(min=26, max=100_000, help="Events per project (at least 26).")
    ] = 60,
    rate: Annotated[
        float, typer.Option(min=0, help="Entries per second; 0 publishes as fast as possible.")
    ] = 0,
    invalid_ratio: Annotated[
        float, typer.Option(min=0, max=0.9, help="Share of deliberately invalid entries.")
    ] = 0.05,
    first_project: Annotated[
        int | None, typer.Option(min=0, help="First project id (default: after the known ones).")
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(help="Random seed: the same seed, the same runs (default: random)."),
    ] = None,
) -> None:
    """Publish a realistic mixed workload: several projects from ingestion to deployment,
    Pulse runs, and a sprinkling of invalid events (they end up as dead letters)."""
    settings = Settings()
    first = first_project if first_project is not None else asyncio.run(_next_project(settings))
    seed = seed if seed is not None else random.randrange(2**31)
    items = workload(projects, size, invalid_ratio, first_project=first, seed=seed)
    result = asyncio.run(_publish(settings, items, rate))
    for line in summary(result, items, seed, rate):
        typer.echo(line)
    for line in next_steps(settings, projects_of(items), autopilot_runs(items)):
        typer.echo(line)


def summary(result: DemoResult, items: list[Item], seed: int, rate: float) -> list[str]:
    """What was published and the ids it created (the same for the same seed)."""
    paced = f" in {result.seconds:.1f}s" if rate > 0 else ""  # a wall-clock figure only when asked
    lines = [
        f"published {result.valid} events and {result.invalid} invalid entries "
        f"for projects {', '.join(map(str, projects_of(items)))} (seed {seed}){paced}",
        "runs (autopilot, then the runs nested under it):",
    ]
    for parent, children in nested_runs(items).items():
        lines.append(f"  {parent}: {', '.join(children)}")
    return lines


def next_steps(settings: Settings, projects: list[int], runs: list[str]) -> list[str]:
    """The "what to look at next" list printed after the demo (commands, aligned comments)."""
    host = "127.0.0.1" if settings.api_host in ("0.0.0.0", "::") else settings.api_host
    base = f"http://{host}:{settings.api_port}"
    project = projects[0]
    run = runs[0] if runs else "RUN_ID"
    steps = [
        (f"curl -s {base}/api/projects/{project}/coach", "suggestions, every coach stage"),
        (f"curl -s '{base}/api/projects/{project}/events?limit=20'", "the project's history"),
        (f"curl -s '{base}/api/runs/{run}/events?children=true'", "a run and its children"),
        ("runbus dlq stats", "dead letters by reason"),
        ("runbus dlq tail", "the latest dead letters"),
        ("runbus status", "streams, groups, lag"),
        (f"{base}/ui", "the dashboard: coach strips, runs, live dead letters"),
        (f"{base}/docs", "the whole HTTP API, in a browser"),
    ]
    width = max(len(command) for command, _ in steps)
    lines = ["", "What to look at next (the pipeline needs a second or two):"]
    return lines + [f"  {command.ljust(width)}  # {why}" for command, why in steps]


def asyncapi(
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write to this file (default: stdout).")
    ] = None,
) -> None:
    """Write the AsyncAPI 3.0 document of the streams (also served at GET /asyncapi.json)."""
    from services.api.asyncapi import asyncapi_document

    text = orjson.dumps(asyncapi_document(Settings()), option=orjson.OPT_INDENT_2).decode()
    if out is None:
        typer.echo(text)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n", encoding="utf-8")
    typer.echo(f"wrote {out}")
