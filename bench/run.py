"""``python -m bench.run [--quick]``: every measurement, in order, then the report.

Order matters: the limits are measured first, on a quiet machine, then each history backend end
to end, then the lean hand-written baseline pipeline on both backends (the yardstick runbus is
held to, right after it on the same machine), then the history store's own ceiling (ready rows
into the real schema, to hold the end to end figures against), then cost growth, then the
cluster part (single node vs a local 3+3 Redis Cluster, and the capacity model's inputs), then
memory under a backlog, then the dashboard (its pages' render times, and the pipeline with live
dashboards open), then the API's read path under an HTTP load generator (``api_reads``). A part
that fails is reported (``errors`` in the JSON, exit code 1) and the others still run. Whatever
happens — an error, Ctrl-C, SIGTERM — spawned processes are stopped and the run's keys, schemas
and files are removed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import redis

from bench import (
    api_reads,
    api_reads_report,
    baseline,
    capacity,
    ceiling,
    ceiling_report,
    cluster,
    cpu_report,
    dashboard,
    dashboard_report,
    growth,
    limits,
    memory,
    scale_report,
)
from bench.backends import run_backend
from bench.env import REDIS_URL, Workspace, machine
from bench.markdown import render
from bench.plan import Plan
from bench.report import headline, verdicts
from shared.names import Names

RESULTS = Path(__file__).resolve().parent / "results"
PARTS = (
    "limits",
    "sqlite",
    "postgres",
    "baseline",
    "ceiling",
    "run_detail",
    "dead_letter_reads",
    "cluster",
    "backlog",
    "dashboard",
    "api_reads",
)

Part = Callable[[], Any]


def _limits(plan: Plan, ws: Workspace) -> Any:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        stream = Names(ws.namespace("limits")).tag + ":limit"
        return limits.measure(client, stream, plan.limit_events, plan.limit_rounds)
    finally:
        client.close()


def _run_detail(plan: Plan, ws: Workspace, deadline: float) -> Any:
    sizes, reads = plan.history_sizes, plan.history_reads
    sqlite = asyncio.run(growth.run_detail(ws.sqlite_url("history"), sizes, reads))
    ten_m = 10_000_000 if plan.history_10m else None
    postgres = asyncio.run(
        growth.run_detail(ws.postgres_url("history"), sizes, reads, ten_m, deadline)
    )
    return {"sqlite": sqlite, "postgres": postgres}


#: Seconds kept for the parts after the run-detail one (dead-letter reads, backlog), besides
#: the cluster part's own estimate.
RESERVE_S = 120.0


def parts(plan: Plan, ws: Workspace, began: float) -> dict[str, Part]:
    """Every part of the run, in order."""
    deadline = began + plan.budget_s - RESERVE_S - plan.cluster_estimate_s - plan.ui_estimate_s
    found: dict[str, Part] = {
        "limits": lambda: _limits(plan, ws),
        "sqlite": lambda: asyncio.run(run_backend(ws, plan, "sqlite")),
        "postgres": lambda: asyncio.run(run_backend(ws, plan, "postgres")),
        "baseline": lambda: baseline.run(ws, plan),
        "ceiling": lambda: ceiling.run(ws, plan),
        "run_detail": lambda: _run_detail(plan, ws, deadline),
        "dead_letter_reads": lambda: asyncio.run(
            growth.dead_letter_reads(ws.namespace("dlq"), plan.dead_letters, plan.cli_rounds)
        ),
        "cluster": lambda: cluster.run(ws, plan),
    }
    if plan.backlog:
        count = plan.backlog
        found["backlog"] = lambda: memory.backlog(ws, count, plan.backlog_s)
    found["dashboard"] = lambda: dashboard.run(ws, plan)
    found["api_reads"] = lambda: api_reads.run(ws, plan)
    return found


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # unwinds through every finally: processes stopped, keys removed


def measure(
    plan: Plan, ws: Workspace, only: Sequence[str], began: float
) -> tuple[dict[str, Any], dict[str, str]]:
    """Run the parts; raw results and errors by part."""
    raw: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, part in parts(plan, ws, began).items():
        if only and name not in only:
            continue
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        started = time.monotonic()
        try:
            raw[name] = part()
        except Exception as exc:  # report it, keep measuring the rest
            traceback.print_exc()
            errors[name] = f"{type(exc).__name__}: {exc}"
        finally:
            ws.clean()
        print(f"bench: {name} done in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return raw, errors


def write(doc: dict[str, Any], markdown: str, directory: Path = RESULTS) -> None:
    """latest.json and latest.md (written whole, then renamed into place)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in (("latest.json", json.dumps(doc, indent=2) + "\n"), ("latest.md", markdown)):
        tmp = directory / f"{name}.tmp"
        tmp.write_text(text)
        tmp.replace(directory / name)


def merged(
    raw: dict[str, Any], started: str, quick: bool, directory: Path = RESULTS
) -> tuple[dict[str, Any], dict[str, str]]:
    """`raw` laid over the parts of the last run of the same kind (full or quick), and when
    each part was measured: ``--only`` re-measures some parts without losing the others."""
    stored: dict[str, Any] = {}
    path = directory / "latest.json"
    if path.is_file():
        stored = json.loads(path.read_text())
    if stored.get("quick") != quick:
        return raw, dict.fromkeys(raw, started)
    when = stored.get("parts_measured_at") or dict.fromkeys(stored["details"], stored["started_at"])
    return {**stored["details"], **raw}, {**when, **dict.fromkeys(raw, started)}


def rerender(directory: Path = RESULTS) -> int:
    """Rewrite latest.md from latest.json (after a change to the report's layout)."""
    doc = json.loads((directory / "latest.json").read_text())
    raw = doc.pop("details")
    markdown = render(raw, doc, cpu_report.load_reference())
    write({**doc, "details": raw}, markdown, directory)
    print(markdown)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 when every part ran."""
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="about two minutes, no 1M parts")
    parser.add_argument(
        "--no-10m", action="store_true", help="never try 10M history rows (PostgreSQL)"
    )
    parser.add_argument("--only", nargs="*", default=[], choices=PARTS, help="run only these")
    parser.add_argument(
        "--render", action="store_true", help="only rewrite latest.md from latest.json"
    )
    args = parser.parse_args(argv)
    if args.render:
        return rerender()
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    plan = Plan.small() if args.quick else Plan.full(with_10m=not args.no_10m)
    ws = Workspace()
    started, began = datetime.now(UTC), time.monotonic()
    about = machine()
    reference = cpu_report.load_reference()
    try:
        raw, errors = measure(plan, ws, args.only, began)
    finally:
        ws.clean()
    stamp = started.strftime("%Y-%m-%d %H:%M UTC")
    measured_at = dict.fromkeys(raw, stamp)
    if args.only:
        raw, measured_at = merged(raw, stamp, plan.quick)
    head = (
        headline(raw)
        | ceiling_report.headline(raw)
        | scale_report.headline(raw)
        | dashboard_report.headline(raw)
        | api_reads_report.headline(raw)
        | cpu_report.headline(raw, reference)
        | {
            "machine": about | {"load_avg_at_end": [round(x, 2) for x in os.getloadavg()]},
            "quick": plan.quick,
            "started_at": stamp,
            "parts_measured_at": measured_at,
            "duration_s": round(time.monotonic() - began, 1),
        }
    )
    head["capacity_model"] = capacity.model(raw)
    head["targets"] = verdicts(head)
    head["errors"] = errors
    markdown = render(raw, head, reference)
    write({**head, "details": raw}, markdown)
    print(markdown)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
