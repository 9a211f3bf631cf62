"""`runbus run SERVICE`: start one service, or all of them, in the foreground.

``runbus run validator|persister|coach|api`` runs one service (SIGINT/SIGTERM drain it).
``runbus run all`` starts one supervised child process per service (process-per-stage is where
the throughput is), prints where the API and its docs are, forwards SIGINT/SIGTERM to the
children, waits for them to drain, and exits 0. ``--ensure-redis`` (what ``make run`` passes)
starts a local redis-server when none answers at the default URL.
"""

from __future__ import annotations

import asyncio
import importlib
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from shared.logging import configure_logging
from shared.settings import REPO_ROOT, Settings


class Service(StrEnum):
    """Services `runbus run` can start."""

    validator = "validator"
    persister = "persister"
    coach = "coach"
    api = "api"
    all = "all"


def register(app: typer.Typer) -> None:
    """Add the commands of this module to the app."""
    app.command("run")(run)


def run(
    service: Annotated[Service, typer.Argument(help="Which service to run (all: every one).")],
    slot: Annotated[
        int | None, typer.Option(help="Replica slot (part of the stable consumer name).")
    ] = None,
    ensure_redis: Annotated[
        bool,
        typer.Option(
            "--ensure-redis",
            help="all: start a local redis-server (files under var/redis) if none answers.",
        ),
    ] = False,
    validators: Annotated[
        int, typer.Option(min=1, max=64, help="all: validator processes to run.")
    ] = 1,
    redis_dir: Annotated[
        Path, typer.Option(help="--ensure-redis: where the local Redis keeps its files.")
    ] = REPO_ROOT / "var" / "redis",
) -> None:
    """Run a service in the foreground until SIGINT/SIGTERM, then drain and exit 0."""
    overrides = {} if slot is None else {"consumer_slot": slot}
    settings = Settings(**overrides)  # type: ignore[arg-type]
    configure_logging(settings)
    if service is Service.all:
        code = run_all(
            settings, ensure_redis=ensure_redis, validators=validators, redis_dir=redis_dir
        )
        raise typer.Exit(code)
    if service is Service.api:
        from services.api.app import serve_api

        asyncio.run(serve_api(settings))
        return
    module = importlib.import_module(f"services.{service.value}.app")
    asyncio.run(module.build_app(settings).run())


def run_all(
    settings: Settings,
    *,
    ensure_redis: bool = False,
    validators: int = 1,
    redis_dir: Path = REPO_ROOT / "var" / "redis",
) -> int:
    """Supervise every service until SIGINT/SIGTERM; the exit code."""
    from services.runtime.local_redis import LocalRedis, RedisUnavailable
    from services.runtime.local_redis import ensure_redis as start_redis

    local = LocalRedis()
    if ensure_redis:
        try:
            local = start_redis(settings, redis_dir)
        except RedisUnavailable as exc:
            typer.echo(f"runbus: {exc}", err=True)
            return 2
    try:
        return asyncio.run(_supervise(settings, validators))
    finally:
        local.stop()  # after the services drained: they acknowledge into it


async def _supervise(settings: Settings, validators: int) -> int:
    """Start the children, print where things are once the API answers, wait for the end."""
    from services.runtime.logic import banner, children, display_host
    from services.runtime.supervisor import Supervisor, install_stop_signals, wait_until_serving

    stop = asyncio.Event()
    install_stop_signals(stop)
    task = asyncio.create_task(Supervisor(children(validators)).run(stop))
    host, port = display_host(settings.api_host), settings.api_port
    if await wait_until_serving(host, port, stop):
        typer.echo("\n".join(banner(host, port, settings.redis_url, settings.database_url)))
    return await task
