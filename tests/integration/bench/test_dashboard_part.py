"""The benchmark's dashboard part, end to end on a tiny data set, so it cannot rot.

Real PostgreSQL (its schema), a private redis-server, ``runbus run api``, Debian's Chromium,
the services and the dashboards' process: everything ``make bench`` runs, only smaller.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from bench import dashboard, dashboard_report
from bench.env import Workspace
from bench.plan import Plan

pytestmark = pytest.mark.integration

TINY = dataclasses.replace(
    Plan.small(),
    warmup_s=0.8,
    ui_rows=2_000,
    ui_dead_letters=50,
    ui_requests=2,
    ui_loads=1,
    ui_dashboards=3,
    ui_window_s=0.5,
    ui_idle_s=0.3,
)


@pytest.fixture(scope="module")
def result() -> Any:
    ws = Workspace()
    try:
        yield dashboard.run(ws, TINY)
    finally:
        ws.clean()


def test_every_page_is_timed_or_reported_absent(result: Any) -> None:
    pages = result["render"]["pages"]
    assert set(pages) == {"overview", "project", "run", "dead_letters", "dead_letter", "search"}
    assert all(p["server"]["status"] in ("ok", "absent") for p in pages.values()), pages
    overview = pages["overview"]
    assert overview["server"]["n"] == 2 and overview["server"]["p50_ms"] > 0
    assert overview["browser"]["fcp_ms"] > 0
    assert overview["browser"]["dom_content_loaded_ms"] > 0
    for page in pages.values():  # the browser loads every page that exists, and only those
        assert ("browser" in page) == (page["server"]["status"] == "ok")


def test_the_pipeline_ran_with_and_without_dashboards(result: Any) -> None:
    live = result["live"]
    for phase in ("none", "live", "none_again"):
        assert live[phase]["eps"] > 0 and live[phase]["drained"], live[phase]
        assert live[phase]["commands_per_event"] > 0
    assert live["viewers"]["opened"] == live["viewers"]["connections"] > 0
    assert live["viewers"]["errors"] == 0
    assert live["mode"] in ("sse", "poll", "poll+sse", "stand-in")
    assert set(live["api_commands_per_s"]) == {"0", "1", "3"}
    assert all(v >= 0 for v in live["api_commands_per_s"].values())
    assert live["live"]["cpu_pct"]["viewers"] is not None


def test_the_report_renders_the_part(result: Any) -> None:
    raw = {"dashboard": result}
    assert "Overview `/ui`" in "\n".join(dashboard_report.render_table(raw))
    assert "3 live dashboards" in "\n".join(dashboard_report.live_table(raw))
