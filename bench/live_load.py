"""The pipeline's end-to-end figure with N live dashboards open versus none, and what the API
asks of Redis meanwhile.

In one sitting, on SQLite and the part's own redis-server (so INFO commandstats counts only
this part's clients):

1. validator, persister and coach start (`bench.services.ServiceGroup`), and ``runbus run
   api`` on the same namespace; a sustained phase (`bench.pipeline.sustained`: flat out,
   events/s through validator -> persister + coach), no dashboard open;
2. N dashboards open (`bench.viewers`, a separate process): the same sustained phase;
3. the dashboards closed, the no-dashboard phase once more: how far its two runs lie apart is
   the noise the N-dashboard figure is judged against (its ratio is to their mean);
4. the services stopped (their streams and groups stay): idle windows with 0, 1 and N
   dashboards open. Nothing but the API talks to the server then, so every command it counts
   (less the reading's own INFO) is the API's: live updates cost the same per process whatever
   the number of clients when the figure with one dashboard equals the figure with N.

In the sustained phases every client's commands count (the producer's and the services' scale
with the events, so they are given per event), and the API's and the dashboards' CPU are read
from /proc.
"""

from __future__ import annotations

import asyncio
import json
import math
import select
import signal
import subprocess
import sys
import time
from types import TracebackType
from typing import Any

import redis
import redis.asyncio as aredis

from bench import pipeline
from bench.api_process import ApiProcess
from bench.env import Workspace, reap
from bench.plan import Plan
from bench.private_redis import calls_delta, command_calls
from bench.probes import History, open_history
from bench.services import ServiceGroup, cpu_s
from bench.stats import ratio, rounded
from services.runtime.supervisor import die_with_parent
from shared.names import Names
from shared.settings import REPO_ROOT, Settings

VIEWERS_READY_S = 60.0
#: The project the dashboards show: one the producer's events go to, so its strips change.
PROJECT = 1
#: The API's status sampler period: `bench.api_process` passes no RUNBUS_* of its own, so the
#: API runs with the setting's default.
SAMPLE_S: float = Settings.model_fields["ui_sample_s"].default
#: Figures of a sustained phase the report keeps.
KEEP = ("eps", "history_eps", "coach_eps", "seconds", "drained", "lost", "cpu_us_per_event")


class Viewers:
    """`bench.viewers` as a process: N live dashboards on one API."""

    def __init__(self, base_url: str, dashboards: int, project: int) -> None:
        self.argv = [sys.executable, "-m", "bench.viewers", "--base-url", base_url]
        self.argv += ["--dashboards", str(dashboards), "--project", str(project)]
        self.proc: subprocess.Popen[bytes] | None = None
        self.opened: dict[str, Any] = {}

    @property
    def pid(self) -> int:
        """Its process id."""
        if self.proc is None:
            raise RuntimeError("the viewers are not running")
        return self.proc.pid

    def _line(self, timeout: float) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else b""
        if not line:
            raise RuntimeError(f"bench.viewers said nothing within {timeout:.0f} s")
        found: dict[str, Any] = json.loads(line)
        return found

    def start(self) -> Viewers:
        """Spawn them; return once every connection is open."""
        self.proc = subprocess.Popen(
            self.argv, cwd=REPO_ROOT, stdout=subprocess.PIPE, preexec_fn=die_with_parent
        )
        self.opened = self._line(VIEWERS_READY_S)
        if not self.opened.get("ready"):
            raise RuntimeError(f"dashboards not all open: {self.opened}")
        return self

    def stop(self) -> dict[str, Any]:
        """SIGTERM; their tally since they were ready."""
        if self.proc is None:
            return {}
        self.proc.send_signal(signal.SIGTERM)
        try:
            tally = self._line(30.0)
        finally:
            reap(self.proc, 10)
            self.proc = None
        return tally

    def __enter__(self) -> Viewers:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def cpu_pct(
    before: dict[str, float | None], after: dict[str, float | None], wall: float
) -> dict[str, float | None]:
    """CPU use of each process over a window, in % of one core."""
    found: dict[str, float | None] = {}
    for name, start in before.items():
        end = after.get(name)
        found[name] = (
            None if start is None or end is None else rounded((end - start) / wall * 100, 1)
        )
    return found


def _cpu(pids: dict[str, int]) -> dict[str, float | None]:
    return {name: cpu_s(pid) for name, pid in pids.items()}


async def idle_window(client: redis.Redis, seconds: float, pids: dict[str, int]) -> dict[str, Any]:
    """Commands/s of the whole server and CPU of `pids` over `seconds` of no load."""
    calls, cpu, began = command_calls(client), _cpu(pids), time.monotonic()
    await asyncio.sleep(seconds)  # the window itself: nothing to wait for
    delta, wall = calls_delta(calls, command_calls(client)), time.monotonic() - began
    delta["info"] = delta.get("info", 1) - 1  # the reading's own INFO
    return {
        "seconds": round(wall, 2),
        "commands_per_s": rounded(sum(delta.values()) / wall, 1),
        "by_command_per_s": {k: rounded(v / wall, 1) for k, v in delta.items() if v},
        "cpu_pct": cpu_pct(cpu, _cpu(pids), wall),
    }


async def loaded(
    p: pipeline.Pipeline, plan: Plan, client: redis.Redis, pids: dict[str, int], prefix: str
) -> dict[str, Any]:
    """One sustained phase, with every command and the CPU of `pids` over the whole of it."""
    calls, cpu, began, valid = command_calls(client), _cpu(pids), time.monotonic(), p.valid
    sus = await pipeline.sustained(p, plan.ui_window_s, plan.warmup_s, prefix)
    delta, wall = calls_delta(calls, command_calls(client)), time.monotonic() - began
    total, events = sum(delta.values()), p.valid - valid
    return {k: sus.get(k) for k in KEEP} | {
        "phase_s": round(wall, 2),
        "commands_per_s": rounded(total / wall, 0),
        "commands_per_event": rounded(total / events, 2) if events else None,
        "cpu_pct": cpu_pct(cpu, _cpu(pids), wall),
    }


def mean_eps(*phases: dict[str, Any]) -> float | None:
    """The mean end-to-end figure of the phases that have one."""
    known = [float(p["eps"]) for p in phases if p.get("eps")]
    return sum(known) / len(known) if known else None


def spread(first: float | None, second: float | None) -> float | None:
    """How far two runs of the same phase lie apart, relative to their mean: the noise."""
    if not first or not second:
        return None
    return round(abs(first - second) / ((first + second) / 2), 3)


async def _loaded_phases(
    p: pipeline.Pipeline, plan: Plan, client: redis.Redis, api: ApiProcess
) -> dict[str, Any]:
    pids, n = {"api": api.pid}, plan.ui_dashboards
    none = await loaded(p, plan, client, pids, "u0-")
    viewers = Viewers(api.base_url, n, PROJECT).start()
    try:
        live = await loaded(p, plan, client, pids | {"viewers": viewers.pid}, "un-")
    finally:
        tally = viewers.stop()
    again = await loaded(p, plan, client, pids, "u1-")
    return {
        "backend": "sqlite",
        "dashboards": n,
        "mode": tally.get("mode"),
        "connections_per_dashboard": tally.get("connections", 0) // max(1, n),
        "none": none,
        "live": live,
        "none_again": again,
        "eps_ratio": ratio(live.get("eps"), mean_eps(none, again)),
        "noise": spread(none.get("eps"), again.get("eps")),
        "viewers": tally,
    }


def idle_seconds(at_least: float, sample_s: float = SAMPLE_S) -> float:
    """The shortest window of whole sampler periods that lasts `at_least` seconds.

    The sampler runs whatever the number of pages, so each idle window must hold the same
    number of its rounds, or their count reads as the pages' cost.
    """
    return round(math.ceil(round(at_least / sample_s, 6)) * sample_s, 6)


async def idle_phases(plan: Plan, client: redis.Redis, api: ApiProcess) -> dict[str, Any]:
    """The API's commands with 0, 1 and N dashboards open and nothing else talking to Redis.

    A window lasts at least the longest poll period of a dashboard, so each poll is seen, and
    whole sampler periods (`idle_seconds`).
    """
    pids = {"api": api.pid}
    idle = {"0": await idle_window(client, idle_seconds(plan.ui_idle_s), pids)}
    for n in (1, plan.ui_dashboards):
        with Viewers(api.base_url, n, PROJECT) as viewers:
            longest = max(plan.ui_idle_s, float(viewers.opened.get("longest_poll_s") or 0))
            seconds = idle_seconds(longest)
            idle[str(n)] = await idle_window(client, seconds, pids | {"viewers": viewers.pid})
    return idle


async def run(ws: Workspace, plan: Plan, redis_url: str) -> dict[str, Any]:
    """Services and API, the loaded phases, then the idle ones (see the module's docstring)."""
    namespace, url = ws.namespace("uilive"), ws.sqlite_url("uilive")
    services = ServiceGroup(namespace, url, ws.directory, redis_url=redis_url)
    api = ApiProcess(namespace, url, redis_url, ws.directory)
    client, aclient = redis.Redis.from_url(redis_url), aredis.Redis.from_url(redis_url)
    history: History | None = None
    try:
        api.spawn()  # it starts while the services do (processes: no thread spawns anything)
        services.start()
        api.wait_ready()
        history = await open_history(url)
        p = pipeline.Pipeline(Names(namespace), aclient, history, services.pids)
        p.redis_url = redis_url
        found = await _loaded_phases(p, plan, client, api)
        services.stop()  # their streams and groups stay: the API still reads and shows them
        found["idle"] = await idle_phases(plan, client, api)
        found["api_commands_per_s"] = {k: v["commands_per_s"] for k, v in found["idle"].items()}
        return found
    finally:
        if history is not None:
            await history.close()
        api.stop()
        services.stop()
        client.close()
        await aclient.aclose()
