"""``python -m services.runtime.healthcheck SERVICE``: the container healthcheck (exit 0 / 1).

A worker (validator, persister, coach) is unhealthy when work waits and it does not take it:
on some partition, an entry of its stream has waited longer than ``--max-idle`` seconds without
being delivered to its group, and this host's consumer has not read that partition for that
long either (the rule, `services.ops.health.WorkerView`, is shared with the dashboard). With
several partitions it prints one line per partition after the verdict. (On Redis 7.0 a consumer
blocked in XREADGROUP on an empty stream looks idle, and does not even exist before its first
delivery, so its idle time alone cannot tell a quiet worker from a dead one.) The group must
exist: the worker creates it when it starts. The API is healthy when ``GET /readyz`` answers
200 (Redis and the database reachable).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import redis.asyncio as aredis
from redis.exceptions import ResponseError

from services.ops.health import MAX_IDLE_S, WorkerView
from services.runtime.logic import API, SERVICES, display_host
from services.runtime.readiness import http_ok
from shared.connections import async_redis
from shared.pipeline import PIPELINE
from shared.settings import Settings
from shared.wire import as_text
from shared.workers import warm_up


async def _oldest_waiting_s(client: aredis.Redis, stream: str, last_delivered: str) -> float | None:
    rows = await client.xrange(stream, f"({last_delivered}", "+", count=1)
    first = rows[0][0] if rows else None
    if first is None:
        return None
    millis = int(as_text(first).split("-", 1)[0])
    return max(0.0, time.time() - millis / 1000)


async def _view(client: aredis.Redis, stream: str, group: str, mine: str) -> WorkerView:
    try:
        groups = {as_text(g["name"]): g for g in await client.xinfo_groups(stream)}
    except ResponseError:  # no such stream
        return WorkerView(group_exists=False)
    if group not in groups:
        return WorkerView(group_exists=False)
    consumers = await client.xinfo_consumers(stream, group)
    idle = next((int(c["idle"]) / 1000 for c in consumers if as_text(c["name"]) == mine), None)
    last = as_text(groups[group]["last-delivered-id"])
    return WorkerView(True, idle, await _oldest_waiting_s(client, stream, last))


async def worker_views(settings: Settings, service: str) -> dict[int, WorkerView]:
    """Each partition's group and this host's consumer of `service` (a stage: KeyError if not)."""
    stage = PIPELINE.stage(service)
    mine = settings.consumer_for(service)
    partitions = settings.names.all_partitions
    client = async_redis(settings, socket_timeout=3.0)
    try:
        await warm_up(client)  # before the partitions' reads run concurrently
        views = await asyncio.gather(
            *(_view(client, p.stream(stage.reads), stage.group, mine) for p in partitions)
        )
    finally:
        await client.aclose()
    return {p.index: view for p, view in zip(partitions, views, strict=True)}


async def worker_view(settings: Settings, service: str, partition: int = 0) -> WorkerView:
    """One partition's view (`worker_views`)."""
    return (await worker_views(settings, service))[partition]


def describe(index: int, view: WorkerView, max_idle_s: float) -> str:
    """One partition's line of the report: its verdict, and why when unhealthy."""
    if view.healthy(max_idle_s):
        return f"  partition {index}: healthy"
    if not view.group_exists:
        return f"  partition {index}: unhealthy (no group)"
    idle = "never read" if view.idle_s is None else f"idle {view.idle_s:.1f} s"
    return f"  partition {index}: unhealthy (an entry waits {view.waiting_s:.1f} s; {idle})"


async def check(settings: Settings, service: str, max_idle_s: float) -> tuple[bool, list[str]]:
    """The verdict for one service, and one line per partition when a worker has several.

    A worker is healthy when it is on every partition: work waiting anywhere must be taken.
    """
    if service == API:
        return await http_ok(display_host(settings.api_host), settings.api_port, "/readyz"), []
    try:
        views = await worker_views(settings, service)
    except Exception:  # Redis unreachable or answering nonsense: not healthy
        return False, []
    ok = all(view.healthy(max_idle_s) for view in views.values())
    lines = [describe(i, v, max_idle_s) for i, v in views.items()] if len(views) > 1 else []
    return ok, lines


async def healthy(settings: Settings, service: str, max_idle_s: float) -> bool:
    """The verdict for one service (`check` without the report)."""
    return (await check(settings, service, max_idle_s))[0]


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, print the verdict, return the exit code."""
    parser = argparse.ArgumentParser(prog="healthcheck", description=__doc__)
    parser.add_argument("service", choices=SERVICES)
    parser.add_argument("--max-idle", type=float, default=MAX_IDLE_S, help="seconds (workers)")
    args = parser.parse_args(argv)
    ok, lines = asyncio.run(check(Settings(), args.service, args.max_idle))
    print("\n".join([f"{args.service}: {'healthy' if ok else 'unhealthy'}", *lines]))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
