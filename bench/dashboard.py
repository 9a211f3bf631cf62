"""The dashboard part: time to first render of each page, and the pipeline with dashboards open.

1. Pages (`pages_part`): a PostgreSQL history of `Plan.ui_rows` rows (runs of exactly 1000
   events, as `bench.growth` loads them, server-side) and `Plan.ui_dead_letters` dead letters
   (pipelined XADD, the validator's format); the coach cache of the project shown is rebuilt
   from that history (``runbus coach rebuild --project``) so its strips have something to
   show. Then ``runbus run api`` starts on that data and each page is timed, server
   (`bench.pages`) and browser (`bench.browser`). A page that 404s is reported ``absent``.
2. Live (`bench.live_load`): the end-to-end figure on SQLite with no dashboard and with
   `Plan.ui_dashboards` live ones, and the Redis commands the API issues with 0, 1 and N.

Everything runs on a redis-server of the part's own (`bench.private_redis`): its command
counts are then the part's alone.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from typing import Any

import httpx
import redis

from bench import growth, live_load
from bench.api_process import ApiProcess
from bench.browser import browser_times
from bench.env import RUNBUS, Workspace, migrate_history
from bench.pages import PageSpec, page_specs, server_times
from bench.plan import Plan
from bench.private_redis import PrivateRedis
from shared.names import Names

#: The run shown by the run page and searched for; its project is the project page's.
RUN_INDEX = 7
#: Longest time spent on one page's server requests (s): a slow page must not eat the budget.
PAGE_BUDGET_S = 20.0


def shown(rows: int) -> tuple[int, str]:
    """(project id, run id) the pages show: a 1000-event run and its project."""
    runs = rows // growth.RUN_EVENTS
    index = RUN_INDEX % runs
    return index % 100, f"run-{index}"


def _rebuild_coach(namespace: str, url: str, redis_url: str, project: int) -> None:
    env = dict(os.environ, RUNBUS_NAMESPACE=namespace, RUNBUS_DATABASE_URL=url)
    env["RUNBUS_REDIS_URL"] = redis_url
    command = [str(RUNBUS), "coach", "rebuild", "--project", str(project), "--json"]
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, timeout=300)


def _newest_dead_letter(names: Names, redis_url: str) -> str:
    client = redis.Redis.from_url(redis_url)
    try:
        newest = client.xrevrange(names.dead, count=1)
    finally:
        client.close()
    if not newest:
        raise RuntimeError("no dead letter was seeded")
    entry = newest[0][0]
    return entry.decode() if isinstance(entry, bytes) else str(entry)


async def seed(plan: Plan, names: Names, url: str, redis_url: str) -> dict[str, Any]:
    """The history (its schema migrated already), the dead letters and the shown project's
    coach cache; seconds each took."""
    project, _ = shown(plan.ui_rows)
    began = time.monotonic()
    await growth.load_postgres(url, 0, plan.ui_rows)
    history_s = time.monotonic() - began
    began = time.monotonic()
    await asyncio.to_thread(growth.fill_dead_letters, names, plan.ui_dead_letters, redis_url)
    dead_s = time.monotonic() - began
    began = time.monotonic()
    await asyncio.to_thread(_rebuild_coach, names.namespace, url, redis_url, project)
    return {
        "history_s": round(history_s, 1),
        "dead_letters_s": round(dead_s, 1),
        "coach_rebuild_s": round(time.monotonic() - began, 1),
    }


async def time_pages(base_url: str, specs: tuple[PageSpec, ...], plan: Plan) -> dict[str, Any]:
    """Server figures of every page, then browser figures of those that exist."""
    found: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=base_url, follow_redirects=True) as client:
        for spec in specs:
            found[spec.name] = {"path": spec.path}
            found[spec.name]["server"] = await server_times(
                client, spec.path, plan.ui_requests, PAGE_BUDGET_S
            )
    present = [s for s in specs if found[s.name]["server"]["status"] == "ok"]
    for name, figures in (await browser_times(base_url, present, plan.ui_loads)).items():
        found[name]["browser"] = figures
    return found


async def pages_part(ws: Workspace, plan: Plan, redis_url: str) -> dict[str, Any]:
    """Seed, start the API on the data, time each page."""
    names = Names(ws.namespace("ui"))
    url = ws.postgres_url("ui")
    await migrate_history(url)
    api = ApiProcess(names.namespace, url, redis_url, ws.directory)
    # The API starts while the data loads (it needs the schema only): seconds saved, and its
    # first render still comes after the data is there.
    api.spawn()
    try:
        seeded = await seed(plan, names, url, redis_url)
        started = api.wait_ready()
        project, run_id = shown(plan.ui_rows)
        specs = page_specs(project, run_id, _newest_dead_letter(names, redis_url))
        pages = await time_pages(api.base_url, specs, plan)
    finally:
        api.stop()
    return {
        "history_rows": plan.ui_rows,
        "backend": "postgres",
        "dead_letters": plan.ui_dead_letters,
        "project": project,
        "run": run_id,
        "seed": seeded,
        "api_startup_s": round(started, 2),
        "pages": pages,
    }


def run(ws: Workspace, plan: Plan) -> dict[str, Any]:
    """The whole dashboard part, on a redis-server of its own."""
    with PrivateRedis(ws.directory / "dashboard-redis") as server:
        pages = asyncio.run(pages_part(ws, plan, server.url))
        server.flush()  # the live runs start on an empty server
        live = asyncio.run(live_load.run(ws, plan, server.url))
    return {"redis": "private redis-server", "render": pages, "live": live}
