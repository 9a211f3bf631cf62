"""Pure decisions of the supervisor: which children, how long to back off, what to print."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from shared.connections import redact
from shared.pipeline import PIPELINE
from shared.retry import SYSTEM_RANDOM, Backoff, RandomSource
from shared.settings import Settings

#: The service that is not a stage: started after every stage (it reads what they write).
API: Final = "api"
#: Every service runbus runs, in start order: the stages, then the API.
SERVICES: Final = (*PIPELINE.stage_names, API)
#: The stage ``--validators`` runs several replicas of.
SCALED_STAGE: Final = PIPELINE.stage("validator").name
#: The ``runbus`` command line the children run, named (the runtime does not import it).
COMMAND_LINE_MODULE: Final = "services.cli"
LOOPBACK_HOSTS: frozenset[str] = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
#: Restarting a crashed child: up to 0.5 s after the first crash, doubling per crash in a row,
#: at most 30 s.
RESTART_BACKOFF: Backoff = Backoff(base_s=0.5, cap_s=30.0)


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """One child process: its display name and its command line."""

    name: str
    argv: tuple[str, ...]


def child_command(service: str, slot: int | None = None) -> tuple[str, ...]:
    """The command that runs one service, with this interpreter (no console script needed)."""
    argv = [sys.executable, "-m", COMMAND_LINE_MODULE, "run", service]
    if slot is not None:
        argv += ["--slot", str(slot)]
    return tuple(argv)


def replicas(service: str, count: int = 1) -> list[ChildSpec]:
    """`count` children of one service; several are named ``<service>-<slot>``."""
    if count == 1:
        return [ChildSpec(service, child_command(service))]
    return [ChildSpec(f"{service}-{slot}", child_command(service, slot)) for slot in range(count)]


def children(validators: int = 1, *, api: bool = True, api_workers: int = 1) -> list[ChildSpec]:
    """The children of `runbus run all`: every `PIPELINE` stage in start order, then the API.

    The validator runs as `validators` replicas, the API as `api_workers` (one port), every
    other stage as one process.
    """
    specs = [
        child
        for stage in PIPELINE.stage_names
        for child in replicas(stage, validators if stage == SCALED_STAGE else 1)
    ]
    if api:
        specs += replicas(API, api_workers)
    return specs


def child_env(base: Mapping[str, str], instance: str) -> dict[str, str]:
    """The children's environment: `base`, with this system's instance id (see /healthz)."""
    variable = f"{Settings.model_config.get('env_prefix', '')}instance_id".upper()
    return {**base, variable: instance}


def backoff_s(failures: int, rng: RandomSource = SYSTEM_RANDOM) -> float:
    """Delay before restarting a child that failed `failures` times in a row (1, 2, ...).

    Jittered below `RESTART_BACKOFF`'s ceiling, so children that crashed together (Redis
    went away) do not all come back at the same instant.
    """
    return RESTART_BACKOFF.delay(failures - 1, rng)


def next_failures(failures: int, uptime_s: float, *, stable_s: float = 60.0) -> int:
    """Consecutive-failure count after a crash: a child that ran `stable_s` starts over at 1."""
    return 1 if uptime_s >= stable_s else failures + 1


def display_host(host: str) -> str:
    """A host a browser can reach: wildcard binds are shown as loopback."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def port_taken_message(host: str, port: int, reason: str) -> str:
    """The one line `runbus run all` prints when the API port is not free."""
    return (
        f"runbus: the API port {host}:{port} is already in use ({reason}): stop what holds "
        "it (another runbus?) or choose another with RUNBUS_API_PORT"
    )


def banner(api_host: str, api_port: int, redis_url: str, database_url: str) -> list[str]:
    """What `runbus run all` prints once its children are started."""
    base = f"http://{display_host(api_host)}:{api_port}"
    links = [
        ("dashboard", f"{base}/ui"),
        ("API", f"{base}/api/status"),
        ("docs", f"{base}/docs   (OpenAPI)"),
        ("streams", f"{base}/asyncapi   (AsyncAPI)"),
        ("metrics", f"{base}/metrics"),
        ("next", "runbus demo   (publishes a sample workload)"),
    ]
    return [
        f"runbus is running (Redis {redact(redis_url)}, history {redact(database_url)})",
        *(f"  {label:<10}{target}" for label, target in links),
        "Ctrl-C drains in-flight batches and stops.",
    ]


def is_loopback_redis(url: str) -> bool:
    """True for a plain (non-TLS) Redis URL on this machine: one we may start a server for."""
    parts = urlsplit(url)
    return parts.scheme == "redis" and (parts.hostname or "") in LOOPBACK_HOSTS


def redis_port(url: str) -> int:
    """The port of a Redis URL (6379 when absent)."""
    return urlsplit(url).port or 6379
