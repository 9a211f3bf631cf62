"""The lean baseline pipeline end to end, measured as runbus's own figure is (issue #15).

For each history backend (SQLite, PostgreSQL): start the two `bench.baseline_stage` processes
(validate, persist), then the same producer as runbus's sustained phase (`bench.producer`,
flat out, at most ``--max-inflight`` unfinished, finished = acked by the persist stage), the
same warm-up and measured window (`Plan.warmup_s`, `Plan.sustained_s`): the figure is rows
that reached the table per second over the window, with CPU µs per stored event of each
process (and the shared Redis server). Ends by waiting until every published event is stored
(``drained``, ``lost``), then stops the stages (SIGTERM, SIGKILL after a deadline).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aredis

from bench import pipeline
from bench.env import REDIS_URL, Workspace, reap
from bench.plan import Plan
from bench.probes import History, open_history
from bench.stats import rate, rounded
from services.runtime.supervisor import die_with_parent
from shared.names import PERSISTER_GROUP, VALIDATOR_GROUP, Names
from shared.settings import REPO_ROOT

STAGES = ("validate", "persist")
BACKENDS = ("sqlite", "postgres")


def has_group(client: redis.Redis, stream: str, group: str) -> bool:
    """Whether a consumer group exists on a stream (False while the stream does not)."""
    try:
        return any(g["name"].decode() == group for g in client.xinfo_groups(stream))
    except redis.ResponseError:
        return False


class Stages:
    """The baseline's two processes of one namespace."""

    def __init__(self, names: Names, database_url: str, log_dir: Path) -> None:
        self.names, self.database_url, self.log_dir = names, database_url, log_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, timeout: float = 30.0) -> float:
        """Spawn both stages, wait until each has joined its group; seconds it took."""
        began = time.monotonic()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for stage in STAGES:
            argv = [sys.executable, "-m", "bench.baseline_stage", stage, "--redis-url", REDIS_URL]
            argv += ["--namespace", self.names.namespace, "--database-url", self.database_url]
            with (self.log_dir / f"{self.names.namespace}-{stage}.log").open("ab") as log:
                self.procs[stage] = subprocess.Popen(
                    argv, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, preexec_fn=die_with_parent,
                )  # fmt: skip
        self._wait_joined(began + timeout)
        return time.monotonic() - began

    def _wait_joined(self, deadline: float) -> None:
        groups = ((self.names.events, VALIDATOR_GROUP), (self.names.valid, PERSISTER_GROUP))
        client = redis.Redis.from_url(REDIS_URL)
        try:
            while not all(has_group(client, *group) for group in groups):
                for stage, proc in self.procs.items():
                    if proc.poll() is not None:
                        raise RuntimeError(f"baseline {stage} exited with {proc.returncode}")
                if time.monotonic() > deadline:
                    raise TimeoutError("baseline stages not started in time")
                time.sleep(0.05)
        finally:
            client.close()

    @property
    def pids(self) -> dict[str, int]:
        """Process id of each stage."""
        return {stage: proc.pid for stage, proc in self.procs.items()}

    def stop(self, timeout: float = 10.0) -> dict[str, int]:
        """SIGTERM both (each finishes its batch), SIGKILL what is left; exit codes."""
        for proc in self.procs.values():
            proc.terminate()
        deadline = time.monotonic() + timeout
        codes = {s: reap(p, max(0.1, deadline - time.monotonic())) for s, p in self.procs.items()}
        self.procs.clear()
        return codes


async def _rows_window(history: History, seconds: float) -> list[tuple[float, int]]:
    """(time, rows) about every second over `seconds`, first and last included."""
    snaps = [(time.monotonic(), await history.count())]
    end = snaps[0][0] + seconds
    while time.monotonic() < end:
        await asyncio.sleep(min(1.0, max(0.0, end - time.monotonic())))
        snaps.append((time.monotonic(), await history.count()))
    return snaps


async def drain(p: pipeline.Pipeline, timeout: float) -> dict[str, Any]:
    """Wait until every event published so far is stored."""
    began = time.monotonic()
    rows = await p.history.count()
    while rows < p.valid and time.monotonic() - began < timeout:
        await asyncio.sleep(0.1)
        rows = await p.history.count()
    spent = round(time.monotonic() - began, 2)
    return {"drained": rows == p.valid, "lost": p.valid - rows, "drain_s": spent}


async def sustained(p: pipeline.Pipeline, seconds: float, warmup: float) -> dict[str, Any]:
    """Flat-out load for `warmup` + `seconds`; rows stored per second over the last `seconds`."""
    proc = pipeline.spawn_producer(p, warmup + seconds + 1, prefix="b-", readers=PERSISTER_GROUP)
    try:
        await asyncio.sleep(warmup)
        cpu_before = await pipeline.cpu_now(p, proc.pid)
        snaps = await _rows_window(p.history, seconds)
        cpu_after = await pipeline.cpu_now(p, proc.pid)
        offered = await pipeline.producer_result(proc, timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    p.valid += int(offered["published"])
    (t0, first), (t1, last) = snaps[0], snaps[-1]
    return {
        "seconds": round(t1 - t0, 2),
        "eps": rounded(rate(last - first, t1 - t0), 0),
        "producer": {k: rounded(float(v), 1) for k, v in offered.items()},
        "cpu_us_per_event": pipeline.cpu_per_event(cpu_before, cpu_after, last - first),
        "series": [(round(t - t0, 1), rows) for t, rows in snaps],
        **(await drain(p, timeout=120)),
    }


async def run_backend(ws: Workspace, plan: Plan, backend: str) -> dict[str, Any]:
    """The baseline end to end on one backend (sqlite or postgres)."""
    part = f"baseline_{backend}"
    url = ws.sqlite_url(part) if backend == "sqlite" else ws.postgres_url(part)
    stages = Stages(Names(ws.namespace(f"baseline-{backend}")), url, ws.directory)
    client = aredis.Redis.from_url(REDIS_URL)
    history: History | None = None
    out: dict[str, Any] = {}
    try:
        out["startup_s"] = round(stages.start(), 2)
        history = await open_history(url)
        p = pipeline.Pipeline(stages.names, client, history, stages.pids)
        out["sustained"] = await sustained(p, plan.sustained_s, plan.warmup_s)
    finally:
        if history is not None:
            await history.close()
        out["exit_codes"] = stages.stop()
        await client.aclose()
    return out


def run(ws: Workspace, plan: Plan) -> dict[str, Any]:
    """The baseline on every backend, one after the other (a quiet machine for each)."""
    found: dict[str, Any] = {"client": "redis-py blocking client, hiredis (C packing)"}
    for backend in BACKENDS:
        found[backend] = asyncio.run(run_backend(ws, plan, backend))
    return found
