"""`runbus run SERVICE`: start one service, or all of them, in the foreground.

``runbus run <stage>|api`` runs one service (SIGINT/SIGTERM drain it); the stages are those of
`shared.pipeline.PIPELINE`. ``runbus run all`` starts one supervised child process per service
(process-per-stage is where the throughput is), prints where the API and its docs are, forwards
SIGINT/SIGTERM to the children, waits for them to drain, and exits 0. ``--ensure-redis`` (what
``make run`` passes) starts a local redis-server when none answers at the default URL;
``--ensure-cluster`` (what ``make run-cluster`` passes) a local six-node Redis Cluster. It
refuses to start (exit 2, one line) when the API port is taken, and prints its banner only once
its own API answers. With ``RUNBUS_API_WORKERS=N`` (N > 1) the API is N processes on the one
port, each binding it with SO_REUSEPORT: ``runbus run all`` supervises them among its children,
``runbus run api`` supervises them itself (a worker is ``runbus run api --slot i``). A worker
whose loop dies logs the error and exits 1, so a supervisor restarts it.
"""

from __future__ import annotations

import asyncio
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final

import typer

from services.runtime.logic import API, SERVICES
from shared.logging import configure_logging
from shared.settings import REPO_ROOT, Settings

if TYPE_CHECKING:
    from services.runtime.local_cluster import LocalCluster
    from services.runtime.logic import ChildSpec

ALL: Final = "all"
#: Where ``--ensure-cluster`` keeps its nodes' files, one directory per port.
CLUSTER_DIR: Final = REPO_ROOT / "var" / "cluster"

#: Services `runbus run` can start: each `PIPELINE` stage, the API, or all of them. (Built from
#: the declaration, so mypy cannot list its members: code compares its values.)
Service = StrEnum("Service", [(name, name) for name in (*SERVICES, ALL)])  # type: ignore[misc]


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
    ensure_cluster: Annotated[
        bool,
        typer.Option(
            "--ensure-cluster",
            help="all: start (or reuse) a local 6-node Redis Cluster on the URL's port and "
            "the next five (files under var/cluster); needs RUNBUS_REDIS_CLUSTER=true.",
        ),
    ] = False,
    validators: Annotated[
        int, typer.Option(min=1, max=64, help="all: validator processes to run.")
    ] = 1,
    cluster_dir: Annotated[
        Path, typer.Option(help="--ensure-cluster: where the local nodes keep their files.")
    ] = CLUSTER_DIR,
    redis_dir: Annotated[
        Path, typer.Option(help="--ensure-redis: where the local Redis keeps its files.")
    ] = REPO_ROOT / "var" / "redis",
) -> None:
    """Run a service in the foreground until SIGINT/SIGTERM, then drain and exit 0."""
    overrides = {} if slot is None else {"consumer_slot": slot}
    settings = Settings(**overrides)  # type: ignore[arg-type]
    configure_logging(settings)
    name = str(service)
    if name == ALL:
        code = run_all(
            settings,
            ensure_redis=ensure_redis,
            ensure_cluster=ensure_cluster,
            validators=validators,
            redis_dir=redis_dir,
            cluster_dir=cluster_dir,
        )
        raise typer.Exit(code)
    if name == API:
        if settings.api_workers > 1 and slot is None:
            raise typer.Exit(run_api_workers(settings))
        from services.api.app import serve_api

        asyncio.run(serve_api(settings))
        return
    run_stage(settings, name)


def run_api_workers(settings: Settings) -> int:
    """`api_workers` API processes on one port, supervised as `runbus run all` supervises its
    children (restarted if they die, SIGTERM each on SIGINT/SIGTERM, none outlives this one)."""
    from services.runtime.logic import child_env, port_taken_message, replicas
    from services.runtime.readiness import port_taken

    taken = port_taken(settings.api_host, settings.api_port)
    if taken is not None:
        reason = taken.strerror or str(taken)
        say(port_taken_message(settings.api_host, settings.api_port, reason), err=True)
        return 2
    # One instance id for every worker: /healthz names the system, whichever worker answers.
    env = child_env(os.environ, settings.instance)
    return asyncio.run(_supervised(replicas(API, settings.api_workers), env))


async def _supervised(specs: list[ChildSpec], env: dict[str, str]) -> int:
    """Run `specs` under a supervisor until SIGINT/SIGTERM; its exit code."""
    from services.runtime.supervisor import Supervisor
    from shared.signals import install_stop_signals

    stop = asyncio.Event()
    install_stop_signals(stop)
    return await Supervisor(specs, env=env).run(stop)


def run_stage(settings: Settings, stage: str) -> None:
    """Run one stage's app until SIGINT/SIGTERM; exit 1 when its worker failed."""
    from services.runtime.stages import STAGES
    from shared.service import WorkerFailed, build_app

    try:
        asyncio.run(build_app(STAGES[stage](), settings).run())
    except WorkerFailed:  # logged, with its error, by the service host
        raise typer.Exit(1) from None


def run_all(
    settings: Settings,
    *,
    ensure_redis: bool = False,
    ensure_cluster: bool = False,
    validators: int = 1,
    redis_dir: Path = REPO_ROOT / "var" / "redis",
    cluster_dir: Path = CLUSTER_DIR,
) -> int:
    """Supervise every service until SIGINT/SIGTERM; the exit code."""
    from services.runtime.local_cluster import ClusterUnavailable
    from services.runtime.local_redis import LocalRedis, RedisUnavailable
    from services.runtime.local_redis import ensure_redis as start_redis
    from services.runtime.logic import port_taken_message
    from services.runtime.readiness import port_taken

    taken = port_taken(settings.api_host, settings.api_port)
    if taken is not None:
        reason = taken.strerror or str(taken)
        say(port_taken_message(settings.api_host, settings.api_port, reason), err=True)
        return 2
    local: LocalRedis | LocalCluster = LocalRedis()
    try:
        if ensure_cluster:
            local = _local_cluster(settings, cluster_dir)
        elif ensure_redis:
            local = start_redis(settings, redis_dir)
    except (RedisUnavailable, ClusterUnavailable) as exc:
        say(f"runbus: {exc}", err=True)
        return 2
    try:
        return asyncio.run(_supervise(settings, validators))
    finally:
        local.stop()  # after the services drained: they acknowledge into it


def _local_cluster(settings: Settings, workdir: Path) -> LocalCluster:
    """The local cluster of ``--ensure-cluster``; the children must talk to it as a cluster."""
    from services.runtime.local_cluster import ClusterUnavailable, ensure_cluster

    if not settings.redis_cluster:
        # The children read the environment: a flag here could not switch them to a cluster.
        raise ClusterUnavailable("--ensure-cluster needs RUNBUS_REDIS_CLUSTER=true")
    return ensure_cluster(settings.redis_url, workdir)


async def _supervise(settings: Settings, validators: int) -> int:
    """Start the children, print where things are once OUR API answers, wait for the end."""
    from services.runtime.logic import banner, child_env, children, display_host
    from services.runtime.readiness import wait_until_serving
    from services.runtime.supervisor import Supervisor
    from shared.logging import get_logger
    from shared.signals import install_stop_signals

    stop = asyncio.Event()
    install_stop_signals(stop)
    env = child_env(os.environ, settings.instance)
    specs = children(validators, api_workers=settings.api_workers)
    task = asyncio.create_task(Supervisor(specs, env=env).run(stop))
    host, port = display_host(settings.api_host), settings.api_port
    if await wait_until_serving(host, port, settings.instance, stop):
        say("\n".join(banner(host, port, settings.redis_url, settings.database_url)))
    elif not stop.is_set():
        get_logger("runbus.runtime").warning("api_not_serving", host=host, port=port)
    return await task


def say(text: str, *, err: bool = False) -> None:
    """Print a line for the user; an output whose reader is gone must not stop the command."""
    stream = sys.stderr if err else sys.stdout
    try:
        typer.echo(text, err=err)
    except OSError:  # EPIPE: nobody reads; point the stream at /dev/null so exit is quiet too
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
