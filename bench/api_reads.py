"""The ``api_reads`` part: what a dashboard's reads cost, through HTTP, beside Redis itself.

`runbus run api` (``RUNBUS_API_WORKERS`` = 1, then 2) serves a coach document written by the
coach's own cache write and a SQLite history of runs of exactly 1000 events (`bench.growth`'s
loader). wrk (`bench.wrk`, a separate C process) drives, round after round:

- ``GET /api/projects/{p}/coach/{stage}`` at 50 connections: the 200;
- the same with the document's ETag in ``If-None-Match``: the 304;
- ``GET /api/runs/{run}/events`` (the 1000 events) at 10 connections (the issue's figure);
- the 200 and the 304 again, each request for another of `SPREAD` documents (a wrk script,
  `wrk.rotation`): polls of one document in flight share their Redis read
  (`services.api.coalesce`): this shows the same sharing across documents;
- the 200 and the 304 of one poll at a time (1 connection): a 200's own cost, a Redis read
  of its own, against a 304's (the issue's "a 304 at most half the cost of a 200");

beside a bare redis.asyncio ``GET`` loop of the same cache key at the same concurrency
(`bench.bare_get`), in the same round. Each figure is the median over the rounds; the CPU the
API's processes used per request comes from ``/proc`` around each load.
"""

from __future__ import annotations

import asyncio
import statistics
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aredis

from bench import bare_get, growth, wrk
from bench.api_process import ApiProcess
from bench.env import REDIS_URL, Workspace, migrate_history
from bench.plan import Plan
from bench.services import cpu_s
from services.coach.io import CoachStore, StageResult
from shared.models import COACH_STAGES, NavigateAction, RunPlaybookAction, Suggestion
from shared.names import Names

#: Concurrent connections of the coach loads and of the bare GET loop (the issue's 50).
CONNECTIONS = 50
#: Connections of the run-detail load (the issue's figure was measured with 10).
RUN_DETAIL_CONNECTIONS = 10
PROJECT, STAGE = 1, "gold_set"
#: Projects of the spread loads: each has a document of every coach stage (10 x 5 = 50, as
#: many as the loads have connections).
SPREAD_PROJECTS = range(1, 11)
#: Runs of 1000 events in the history (the read one among them).
RUNS = 20
RUN_ID = "run-7"
WORKERS = (1, 2)


def suggestions() -> list[Suggestion]:
    """A dashboard's usual gold-set document: three suggestions (about 1 kB of JSON)."""
    topup = RunPlaybookAction(
        label="Generate 222 rows",
        params={"playbook": "gold_set_topup", "target": "gold_set", "rows": 222},
    )
    review = NavigateAction(label="Open the review queue", params={"target": "review-queue"})
    body = "Most useful first models need at least 100 rows of labeled examples to evaluate "
    return [
        Suggestion(severity="critical", title="Your gold set has 78 rows",
                   body=body + "against. Generate 222 more to reach 300.", action=topup),
        Suggestion(severity="warning", title="75 rows waiting for review",
                   body="Reviewed rows can be promoted to the gold set.", action=review),
        Suggestion(severity="info", title="Gold set rows promoted", body=body, action=review),
    ]  # fmt: skip


def spread() -> list[tuple[int, str]]:
    """The documents of the spread loads, (project, stage); `PROJECT`'s `STAGE` among them."""
    return [(p, stage) for p in SPREAD_PROJECTS for stage in COACH_STAGES]


async def seed_coach(names: Names) -> None:
    """The documents, written by the coach's own cache-write script (version 1 each)."""
    client = aredis.Redis.from_url(REDIS_URL)
    try:
        store = CoachStore(client, names)
        results = [
            StageResult(p, stage, rev=1, suggestions=suggestions(), source_id="1-0")
            for p, stage in spread()
        ]
        await store.write_many(results, taxonomy_version="tx-bench", now=datetime.now(UTC))
        await client.sadd(names.coach_projects, *SPREAD_PROJECTS)
    finally:
        await client.aclose()


def coach_path(project_id: int, stage: str) -> str:
    """The coach stage read's path."""
    return f"/api/projects/{project_id}/coach/{stage}"


def spread_scripts(base_url: str, directory: Path) -> dict[str, Path]:
    """The wrk scripts of the spread loads: every document in turn, plain and with its ETag."""
    docs = [
        (coach_path(p, stage), _etag(base_url, coach_path(p, stage))[0]) for p, stage in spread()
    ]
    scripts = {
        "coach_200_spread": wrk.rotation([(path, {}) for path, _ in docs]),
        "coach_304_spread": wrk.rotation([(path, {"If-None-Match": tag}) for path, tag in docs]),
    }
    found = {}
    for name, text in scripts.items():
        found[name] = directory / f"{name}.lua"
        found[name].write_text(text)
    return found


def tree(pid: int) -> list[int]:
    """`pid` and its descendants (the API's workers), from /proc."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                todo += [int(p) for p in (task / "children").read_text().split()]
            except OSError:
                continue
    return found


def measured(load: wrk.Load, binary: str, pids: list[int], what: str) -> dict[str, Any]:
    """One wrk load, checked, with the API processes' CPU per request."""
    before = wrk.pids_cpu(pids, cpu_s)
    result = wrk.run(load, binary)
    used = wrk.pids_cpu(pids, cpu_s) - before
    wrk.needs_ok(result, what)
    result["cpu_us_per_request"] = round(used * 1e6 / result["requests"], 1)
    return result


def summarised(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the rounds of each figure, and the rounds themselves."""
    keys = ("rps", "p50_ms", "p99_ms", "cpu_us_per_request")
    found: dict[str, Any] = {}
    for key in keys:
        values = [float(r[key]) for r in rounds if r.get(key) is not None]
        found[key] = round(statistics.median(values), 3) if values else None
    return found | {"rounds": rounds}


def _etag(base_url: str, path: str) -> tuple[str, int]:
    """The document's ETag and size."""
    answer = httpx.get(base_url + path, timeout=10.0)
    answer.raise_for_status()
    if answer.headers.get("etag") is None:
        raise RuntimeError(f"{path}: no ETag")
    return str(answer.headers["etag"]), len(answer.content)


def loads(
    base_url: str, plan: Plan, etag: str, workers: int, scripts: dict[str, Path]
) -> dict[str, wrk.Load]:
    """The loads driven at an API with `workers` processes (fewer with more workers)."""
    coach = base_url + coach_path(PROJECT, STAGE)
    run = f"{base_url}/api/runs/{RUN_ID}/events"
    seconds = plan.reads_s
    found = {
        "coach_200": wrk.Load(coach, CONNECTIONS, seconds),
        "run_detail": wrk.Load(run, RUN_DETAIL_CONNECTIONS, seconds),
    }
    if workers == 1:
        found["coach_304"] = wrk.Load(coach, CONNECTIONS, seconds, {"If-None-Match": etag})
        for name, script in scripts.items():
            found[name] = wrk.Load(coach, CONNECTIONS, seconds, script=script)
        found["coach_200_lone"] = wrk.Load(coach, 1, seconds)
        found["coach_304_lone"] = wrk.Load(coach, 1, seconds, {"If-None-Match": etag})
    return found


def drive(
    api: ApiProcess, plan: Plan, names: Names, workers: int, directory: Path
) -> dict[str, Any]:
    """Every round of every load on one running API (with the bare GET beside, 1 worker)."""
    binary = wrk.ensure()
    etag, size = _etag(api.base_url, coach_path(PROJECT, STAGE))
    pids = tree(api.pid)
    scripts = spread_scripts(api.base_url, directory)
    chosen = loads(api.base_url, plan, etag, workers, scripts)
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in chosen}
    if workers == 1:
        rounds["bare_get"] = []
    key = names.coach_key(PROJECT, STAGE)
    for _ in range(plan.reads_rounds):
        if workers == 1:
            bare = bare_get.measure(REDIS_URL, key, CONNECTIONS, plan.reads_s)
            rounds["bare_get"].append(asyncio.run(bare))
        for name, load in chosen.items():
            rounds[name].append(measured(load, binary, pids, name))
    found: dict[str, Any] = {name: summarised(r) for name, r in rounds.items()}
    return found | {
        "processes": len(pids), "etag": etag, "coach_bytes": size, "spread_documents": len(spread())
    }  # fmt: skip


def _api(names: Names, url: str, ws: Workspace, workers: int) -> ApiProcess:
    extra = {"RUNBUS_API_WORKERS": str(workers)}
    return ApiProcess(names.namespace, url, REDIS_URL, ws.directory, extra_env=extra)


def run(ws: Workspace, plan: Plan) -> dict[str, Any]:
    """The whole part: seed, then each worker count in turn."""
    wrk.ensure()
    names = Names(ws.namespace("reads"))
    url = ws.sqlite_url("reads")
    asyncio.run(migrate_history(url))
    growth.load_sqlite(url, 0, RUNS * growth.RUN_EVENTS)
    asyncio.run(seed_coach(names))
    found: dict[str, Any] = {
        "history_rows": RUNS * growth.RUN_EVENTS,
        "backend": "sqlite",
        "run": RUN_ID,
        "connections": CONNECTIONS,
        "run_detail_connections": RUN_DETAIL_CONNECTIONS,
        "seconds": plan.reads_s,
        "rounds": plan.reads_rounds,
        "wrk_threads": wrk.THREADS,
    }
    for workers in WORKERS:
        with _api(names, url, ws, workers) as api:
            found[f"workers_{workers}"] = drive(api, plan, names, workers, ws.directory)
    return found
