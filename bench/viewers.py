"""``python -m bench.viewers``: N open, live dashboards, as the HTTP load they put on the API.

A live dashboard is what its open pages hold: their server-sent-event streams (htmx's SSE
extension keeps one ``EventSource`` per ``sse-connect``) and their polls (``hx-get`` with
``hx-trigger="every Ns"``), read from the pages' own HTML so the load is what the pages really
do. One dashboard has every page of `OPEN_PAGES` open (the overview, a project's coach strips,
the dead-letter tail). This process loads those pages once, then opens N times their
connections with httpx (streams read line by line; polls spread evenly over their period, as
pages opened at different moments would be, and sent as htmx sends them), prints one JSON line
once every connection is open, and a JSON tally when it is stopped (SIGTERM) or its time is
up. It is deliberately not N Chromium tabs: on a two-core machine those would measure the
browsers' CPU, not what the dashboards cost runbus.

While no open page has a live part (or none exists yet), every dashboard uses `STAND_IN`
instead — the overview page polled every 2 s — and the tally says so (``mode``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from html.parser import HTMLParser
from typing import Any, Literal
from urllib.parse import urljoin

import httpx

from bench.stats import summary_ms


@dataclass(frozen=True)
class Connection:
    """One connection an open page holds: an SSE stream, or a poll every `every_s` seconds."""

    kind: Literal["sse", "poll"]
    path: str
    every_s: float = 0.0


#: The pages one dashboard has open (``{project}``: the project it shows). The one list to change.
OPEN_PAGES: tuple[str, ...] = ("/ui", "/ui/projects/{project}", "/ui/dead-letters")
#: When none of them has a live part: the overview page, polled every 2 s.
STAND_IN: tuple[Connection, ...] = (Connection("poll", "/ui", 2.0),)
_EVERY = re.compile(r"\bevery\s+(\d+(?:\.\d+)?)\s*(ms|s)\b")


class _LiveParts(HTMLParser):
    """Collects the SSE streams and the polls a page's elements declare."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[Connection] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if found.get("sse-connect"):
            self.found.append(Connection("sse", found["sse-connect"]))
        every = _EVERY.search(found.get("hx-trigger", ""))
        if every and found.get("hx-get"):
            seconds = float(every.group(1)) / (1000 if every.group(2) == "ms" else 1)
            self.found.append(Connection("poll", found["hx-get"], seconds))


def live_parts(page: str) -> tuple[Connection, ...]:
    """The SSE streams and polls a page's HTML holds open once loaded."""
    parser = _LiveParts()
    parser.feed(page)
    parser.close()
    return tuple(parser.found)


OPEN_TIMEOUT_S = 30.0
#: What htmx sends with each of its requests (the routes answer a fragment).
HTMX = {"HX-Request": "true"}
REQUEST_TIMEOUT_S = 30.0


@dataclass
class Tally:
    """What the dashboards received."""

    mode: str = "sse"
    pages: list[str] = field(default_factory=list)
    streams: list[str] = field(default_factory=list)
    """Each connection of one dashboard: ``sse <path>`` or ``poll <path> every <s>``."""
    dashboards: int = 0
    connections: int = 0
    longest_poll_s: float = 0.0
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


async def resolve(
    client: httpx.AsyncClient, pages: Sequence[str], project: int
) -> tuple[str, list[str], tuple[Connection, ...]]:
    """(mode, pages that exist, the connections one dashboard holds) from the pages' HTML."""
    found: list[Connection] = []
    present: list[str] = []
    for page in pages:
        path = page.format(project=project)
        response = await client.get(path, timeout=REQUEST_TIMEOUT_S)
        if response.status_code == 200:
            present.append(path)
            found += [
                Connection(c.kind, urljoin(path, c.path), c.every_s)
                for c in live_parts(response.text)
            ]
    if not found:
        return "stand-in", present, STAND_IN
    kinds = sorted({c.kind for c in found})
    return "+".join(kinds), present, tuple(found)


async def _stream(client: httpx.AsyncClient, path: str, tally: Tally, first: asyncio.Event) -> None:
    headers = {"Accept": "text/event-stream", "HX-Request": "true"}
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
        response = await client.get(path, headers=HTMX, timeout=REQUEST_TIMEOUT_S)
        ok = 200 <= response.status_code < 300  # 204: unchanged (an htmx poll swaps nothing)
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


def describe(conn: Connection) -> str:
    """A connection in one line, for the tally."""
    return (
        f"sse {conn.path}" if conn.kind == "sse" else f"poll {conn.path} every {conn.every_s:g} s"
    )


def _tasks(
    client: httpx.AsyncClient, conns: Sequence[Connection], args: argparse.Namespace, tally: Tally
) -> list[asyncio.Task[None]]:
    tasks = []
    for n in range(args.dashboards):
        for conn in conns:
            if conn.kind == "sse":
                job = sse(client, conn.path, tally)
            else:
                offset = conn.every_s * n / args.dashboards
                job = poll(client, conn.path, conn.every_s, offset, tally)
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
        mode, present, conns = await resolve(client, OPEN_PAGES, args.project)
        tally = Tally(mode, present, [describe(c) for c in conns])
        tally.dashboards, tally.connections = args.dashboards, args.dashboards * len(conns)
        tally.longest_poll_s = max((c.every_s for c in conns), default=0.0)
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
