"""Time to first render of each dashboard page: the server's, then a real browser's.

- Server: httpx GETs the page `requests` times (after one first request, timed on its own: the
  first render after start-up compiles the template) and times each until its whole HTML body
  has arrived, redirects followed; p50/p95/p99.
- Browser: Debian's Chromium (Playwright, ``executable_path``) loads the page `loads` times, each
  in a fresh context (a first visit: empty cache), and reads the Performance API: first
  contentful paint (``performance.getEntriesByType('paint')``) and the navigation timing
  (response start and end, DOMContentLoaded, load), all from the navigation's start; medians.

A page that answers 404 is reported ``absent`` (it is not built yet), any other non-200
``error``: neither fails the part.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from bench.stats import median, rounded, summary_ms

CHROMIUM = Path("/usr/bin/chromium")
#: Debian's headless Chromium as root in a container: no sandbox, no GPU, and no call home of
#: any kind (the browser tests run it with these too).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PAGE_TIMEOUT_S = 60.0
BROWSER_TIMEOUT_MS = 30_000
#: A resource's own 404 names what was not found (``run_not_found``); a missing route does not.
_NOT_FOUND = re.compile(r"\b([a-z_]+_not_found)\b")
#: Read once the page has loaded and painted (every figure in ms from the navigation's start).
TIMING_JS = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const fcp = performance.getEntriesByType('paint')
    .find((e) => e.name === 'first-contentful-paint');
  return {
    fcp_ms: fcp ? fcp.startTime : null,
    ttfb_ms: nav.responseStart,
    response_end_ms: nav.responseEnd,
    dom_content_loaded_ms: nav.domContentLoadedEventEnd,
    load_ms: nav.loadEventEnd,
  };
}"""
PAINTED_JS = """() => performance.getEntriesByType('navigation')[0].loadEventEnd > 0
  && performance.getEntriesByType('paint').some((e) => e.name === 'first-contentful-paint')"""
BROWSER_KEYS = ("fcp_ms", "ttfb_ms", "response_end_ms", "dom_content_loaded_ms", "load_ms")


@dataclass(frozen=True)
class PageSpec:
    """One page to time: its name in the report and its path."""

    name: str
    path: str


def page_specs(project_id: int, run_id: str, dead_letter_id: str) -> tuple[PageSpec, ...]:
    """Every page of the dashboard, on the seeded data."""
    return (
        PageSpec("overview", "/ui"),
        PageSpec("project", f"/ui/projects/{project_id}"),
        PageSpec("run", f"/ui/runs/{quote(run_id, safe='')}"),
        PageSpec("dead_letters", "/ui/dead-letters"),
        PageSpec("dead_letter", f"/ui/dead-letters/{quote(dead_letter_id, safe='')}"),
        PageSpec("search", f"/ui/search?q={quote(run_id, safe='')}"),
    )


def classify(status: int, body: str) -> dict[str, Any]:
    """What a first response says about a page: ok, absent (404) or error."""
    if status == 200:
        return {"status": "ok"}
    if status == 404:
        found = _NOT_FOUND.search(body)
        return {"status": "absent", "code": 404, "error": found.group(1) if found else None}
    return {"status": "error", "code": status}


async def server_times(
    client: httpx.AsyncClient, path: str, requests: int, budget_s: float
) -> dict[str, Any]:
    """The page's server time to full HTML: first request, then p50/p95 of `requests` more."""
    began = time.perf_counter()
    first = await client.get(path, timeout=PAGE_TIMEOUT_S)
    first_s = time.perf_counter() - began
    found = classify(first.status_code, first.text)
    if found["status"] != "ok":
        return found
    spent: list[float] = []
    deadline = time.monotonic() + budget_s
    while len(spent) < requests and time.monotonic() < deadline:
        began = time.perf_counter()
        response = await client.get(path, timeout=PAGE_TIMEOUT_S)
        spent.append(time.perf_counter() - began)
        response.raise_for_status()
    if first.history:  # a redirect (one search hit opens its page): timed to the end
        found["redirected_to"] = first.url.raw_path.decode()
    return found | {
        "bytes": len(first.content),
        "first_ms": rounded(first_s * 1000, 1),
        **summary_ms(spent),
    }


def medians(loads: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The median of each browser figure over several loads (figures missing in a load skip)."""
    found: dict[str, Any] = {"loads": len(loads)}
    for key in BROWSER_KEYS:
        values = [float(load[key]) for load in loads if load.get(key) is not None]
        found[key] = rounded(median(values), 1)
    return found
