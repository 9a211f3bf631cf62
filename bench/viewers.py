"""``python -m bench.viewers``: N open, live dashboards, as the HTTP load they put on the API.

A live dashboard is what its pages hold open: their server-sent-event streams (htmx's SSE
extension keeps one ``EventSource`` per ``sse-connect``) and their polls, if any. This process
opens N times the connections of `DASHBOARD` with httpx (streams read line by line, polls
spread evenly over their period, as pages opened at different moments would be), prints one
JSON line once every connection is open, and a JSON tally when it is stopped (SIGTERM) or its
time is up. It is deliberately not N Chromium tabs: on a two-core machine those would measure
the browsers' CPU, not what the dashboards cost runbus.

`DASHBOARD` is the one list to change. Its SSE streams are probed once at start: while any of
them answers 404 (not built yet), every dashboard uses `STAND_IN` instead — the overview page
polled every 2 s — and the tally says which (``mode``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import httpx

from bench.stats import summary_ms


@dataclass(frozen=True)
class Connection:
    """One connection an open page holds: an SSE stream, or a poll every `every_s` seconds."""

    kind: Literal["sse", "poll"]
    path: str
    """Path on the API; ``{project}`` is the project the dashboard shows."""
    every_s: float = 0.0


#: What one open, live dashboard holds: the overview's status stream, a project page's coach
#: strips, and the dead-letter tail (the SSE endpoints of services/api/live.py + sse.py).
LIVE: tuple[Connection, ...] = (
    Connection("sse", "/ui/live/status"),
    Connection("sse", "/ui/live/projects/{project}/coach"),
    Connection("sse", "/ui/live/dead-letters"),
)
#: Until those endpoints exist: the overview page, polled every 2 s.
STAND_IN: tuple[Connection, ...] = (Connection("poll", "/ui", 2.0),)
#: The connections each simulated dashboard opens.
DASHBOARD: tuple[Connection, ...] = LIVE
OPEN_TIMEOUT_S = 30.0
REQUEST_TIMEOUT_S = 30.0


@dataclass
class Tally:
    """What the dashboards received."""

    mode: str = "live"
    dashboards: int = 0
    connections: int = 0
    opened: int = 0
    sse_events: int = 0
    sse_bytes: int = 0
    reconnects: int = 0
    polls: int = 0
    errors: int = 0
    poll_s: list[float] = field(default_factory=list)

    def result(self) -> dict[str, Any]:
        """The tally as JSON (poll latencies summarised)."""
        found = asdict(self)
        found["poll"] = summary_ms(found.pop("poll_s"))
        return found


async def _exists(client: httpx.AsyncClient, path: str) -> bool:
    async with client.stream("GET", path, timeout=REQUEST_TIMEOUT_S) as response:
        return response.status_code != 404


async def resolve(
    client: httpx.AsyncClient, wanted: Sequence[Connection], project: int
) -> tuple[str, tuple[Connection, ...]]:
    """`wanted` when each of its SSE streams exists, else the stand-in."""
    for conn in wanted:
        if conn.kind == "sse" and not await _exists(client, conn.path.format(project=project)):
            return "stand-in", STAND_IN
    return "live", tuple(wanted)


async def _stream(client: httpx.AsyncClient, path: str, tally: Tally, first: asyncio.Event) -> None:
    headers = {"Accept": "text/event-stream"}
    async with client.stream("GET", path, headers=headers, timeout=None) as response:
        if response.status_code != 200:
            tally.errors += 1
            return
        if not first.is_set():
            tally.opened += 1
            first.set()
        async for line in response.aiter_lines():
            tally.sse_bytes += len(line) + 1
            if line.startswith("event:"):
                tally.sse_events += 1


async def sse(client: httpx.AsyncClient, path: str, tally: Tally) -> None:
    """Hold an SSE stream open; reopen it (after a second, as EventSource does) if it ends."""
    first = asyncio.Event()
    while True:
        try:
            await _stream(client, path, tally, first)
        except httpx.HTTPError:
            tally.errors += 1
        tally.reconnects += 1
        await asyncio.sleep(1.0)


async def _get(client: httpx.AsyncClient, path: str, tally: Tally) -> bool:
    began = time.perf_counter()
    try:
        ok = (await client.get(path, timeout=REQUEST_TIMEOUT_S)).status_code == 200
    except httpx.HTTPError:
        ok = False
    tally.polls += 1
    tally.poll_s.append(time.perf_counter() - began)
    tally.errors += 0 if ok else 1
    return ok


async def poll(
    client: httpx.AsyncClient, path: str, every_s: float, offset_s: float, tally: Tally
) -> None:
    """Load `path` (the page opens), then GET it every `every_s` s from `offset_s` on."""
    if await _get(client, path, tally):
        tally.opened += 1
    await asyncio.sleep(offset_s)
    while True:
        began = time.monotonic()
        await _get(client, path, tally)
        await asyncio.sleep(max(0.0, every_s - (time.monotonic() - began)))


def _tasks(
    client: httpx.AsyncClient, conns: Sequence[Connection], args: argparse.Namespace, tally: Tally
) -> list[asyncio.Task[None]]:
    tasks = []
    for n in range(args.dashboards):
        for conn in conns:
            path = conn.path.format(project=args.project)
            if conn.kind == "sse":
                job = sse(client, path, tally)
            else:
                job = poll(client, path, conn.every_s, conn.every_s * n / args.dashboards, tally)
            tasks.append(asyncio.create_task(job))
    return tasks


async def _wait_open(tally: Tally) -> None:
    deadline = time.monotonic() + OPEN_TIMEOUT_S
    while tally.opened < tally.connections and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Open the dashboards, say so, hold them until stopped; the tally."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(base_url=args.base_url, limits=limits) as client:
        mode, conns = await resolve(client, DASHBOARD, args.project)
        tally = Tally(mode, args.dashboards, args.dashboards * len(conns))
        tasks = _tasks(client, conns, args, tally)
        await _wait_open(tally)
        print(json.dumps({"ready": tally.opened == tally.connections, **tally.result()}))
        sys.stdout.flush()
        tally.polls, tally.poll_s, tally.sse_events, tally.sse_bytes = 0, [], 0, 0
        with contextlib.suppress(TimeoutError):  # time is up: stop as on SIGTERM
            await asyncio.wait_for(stop.wait(), args.seconds)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return tally.result()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the dashboards; print the tally."""
    parser = argparse.ArgumentParser(prog="python -m bench.viewers", description=__doc__)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--dashboards", type=int, default=50)
    parser.add_argument("--project", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=600.0, help="at most this long")
    result = asyncio.run(run(parser.parse_args(argv)))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
