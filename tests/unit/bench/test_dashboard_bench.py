"""The dashboard part's own logic: what a page's answer means, medians, command deltas, noise,
and the report's rows (a page not built yet is "absent", never a figure)."""

from __future__ import annotations

from typing import Any

from bench import dashboard_report
from bench.dashboard import shown
from bench.live_load import cpu_pct, idle_seconds, mean_eps, spread
from bench.pages import classify, medians, page_specs
from bench.private_redis import calls_delta
from bench.report import verdicts
from bench.viewers import STAND_IN, Connection, Tally, describe, live_parts


def test_a_404_page_is_absent_and_names_what_was_not_found() -> None:
    assert classify(200, "<html>") == {"status": "ok"}
    assert classify(404, '{"error": "not_found"}') == {
        "status": "absent",
        "code": 404,
        "error": None,
    }
    assert classify(404, "<p>run_not_found: no run x</p>")["error"] == "run_not_found"
    assert classify(500, "boom") == {"status": "error", "code": 500}


def test_page_paths_quote_what_the_data_holds() -> None:
    specs = {s.name: s.path for s in page_specs(7, "run 7/a", "1-0")}
    assert specs["overview"] == "/ui"
    assert specs["project"] == "/ui/projects/7"
    assert specs["run"] == "/ui/runs/run%207%2Fa"
    assert specs["search"] == "/ui/search?q=run%207%2Fa"
    assert specs["dead_letter"] == "/ui/dead-letters/1-0"


def test_the_shown_run_has_1000_events_of_the_shown_project() -> None:
    # run-k holds rows i with i % runs == k, whose project is i % 100: k % 100 when 100 | runs
    assert shown(1_000_000) == (7, "run-7")
    assert shown(2_000) == (1, "run-1")


def test_browser_figures_are_medians_and_skip_missing_ones() -> None:
    loads: list[dict[str, Any]] = [
        {"fcp_ms": 100.0, "dom_content_loaded_ms": 90.0},
        {"fcp_ms": 300.0, "dom_content_loaded_ms": 80.0},
        {"fcp_ms": None, "dom_content_loaded_ms": 70.0},
    ]
    found = medians(loads)
    assert found["loads"] == 3
    assert found["fcp_ms"] == 200.0  # the missing paint does not count as zero
    assert found["dom_content_loaded_ms"] == 80.0
    assert found["load_ms"] is None


def test_command_deltas_keep_commands_that_ran() -> None:
    before = {"xadd": 10, "get": 5}
    after = {"xadd": 25, "get": 5, "xreadgroup": 3}
    assert calls_delta(before, after) == {"xadd": 15, "xreadgroup": 3}


def test_noise_is_the_spread_of_two_runs_of_the_same_phase() -> None:
    assert spread(9_000.0, 11_000.0) == 0.2
    assert spread(None, 11_000.0) is None
    assert mean_eps({"eps": 9_000.0}, {"eps": 11_000.0}, {"eps": None}) == 10_000.0
    assert mean_eps({"eps": None}) is None


def test_an_idle_window_holds_whole_sampler_periods() -> None:
    # The API's sampler runs every 2 s whatever the pages: a 5 s window held 2 or 3 of its
    # rounds by chance (4.8 vs 7.0 commands/s read as 1 vs 50 dashboards); 6 s holds 3.
    assert idle_seconds(5.0, 2.0) == 6.0
    assert idle_seconds(6.0, 2.0) == 6.0
    assert idle_seconds(0.5, 2.0) == 2.0
    assert idle_seconds(2.0, 0.3) == 2.1


def test_cpu_is_a_share_of_one_core_over_the_window() -> None:
    found = cpu_pct({"api": 1.0, "gone": 2.0}, {"api": 1.5, "gone": None}, 2.0)
    assert found == {"api": 25.0, "gone": None}


PAGE = """<html><body>
<div id="overview" hx-ext="sse" sse-connect="/ui/overview/live?x=1&amp;y=2">
  <div hx-get="/ui/overview/health" hx-trigger="every 3s" hx-swap="innerHTML"></div>
  <div hx-get="/ui/overview/dead" hx-trigger="load, every 500ms"></div>
  <div hx-get="/ui/overview/once" hx-trigger="click"></div>
  <p sse-swap="status">x</p>
</div></body></html>"""


def test_a_pages_live_parts_are_read_from_its_html() -> None:
    assert live_parts(PAGE) == (
        Connection("sse", "/ui/overview/live?x=1&y=2"),
        Connection("poll", "/ui/overview/health", 3.0),
        Connection("poll", "/ui/overview/dead", 0.5),
    )
    assert live_parts("<p>static</p>") == ()
    assert describe(Connection("poll", "/ui", 2.0)) == "poll /ui every 2 s"


def test_the_stand_in_polls_and_the_tally_summarises_latencies() -> None:
    assert (Connection("poll", "/ui", 2.0),) == STAND_IN
    result = Tally(poll_s=[0.01, 0.02]).result()
    assert "poll_s" not in result and result["poll"]["n"] == 2


def _raw() -> dict[str, object]:
    ok = {"status": "ok", "bytes": 2048, "first_ms": 150.0, "n": 8, "p50_ms": 6.0, "p95_ms": 9.4}
    pages = {
        "overview": {"path": "/ui", "server": ok, "browser": {"loads": 3, "fcp_ms": 144.0}},
        "run": {"path": "/ui/runs/run-7", "server": {"status": "absent", "code": 404}},
        "search": {"path": "/ui/search?q=x", "server": {"status": "error", "code": 500}},
        "dead_letter": {"path": "/ui/x", "server": ok | {"redirected_to": "/ui/y"}},
    }
    live = {
        "dashboards": 50,
        "mode": "stand-in",
        "none": {"eps": 10_000.0, "commands_per_event": 4.0, "cpu_pct": {"api": 0.1}},
        "none_again": {"eps": 9_000.0},
        "live": {"eps": 9_500.0, "commands_per_event": 4.1, "cpu_pct": {"api": 8.0}},
        "eps_ratio": 1.0,
        "noise": 0.105,
        "api_commands_per_s": {"0": 0.0, "1": 4.0, "50": 200.0},
    }
    render = {"history_rows": 1_000_000, "dead_letters": 100_000, "pages": pages}
    return {"dashboard": {"render": render, "live": live}}


def test_the_report_shows_absent_pages_and_both_pipeline_figures() -> None:
    raw = _raw()
    rows = "\n".join(dashboard_report.render_table(raw))
    assert "1,000,000 history rows" in rows and "100,000 dead letters" in rows
    assert "| Overview `/ui` | 150.0 / 6.0 / 9.4 ms | 144.0 / — ms | 2.0 kB |" in rows
    assert "| Run (1000 events) `/ui/runs/run-7` | absent (404) | — | — |" in rows
    assert "error 500" in rows
    assert "| One dead letter `/ui/x` → `/ui/y` | 150.0" in rows
    assert "| Project `?` | not measured | — | — |" in rows  # no result: not called absent
    live = "\n".join(dashboard_report.live_table(raw))
    assert "10,000 ev/s / 9,000 ev/s (noise 10%)" in live
    assert "9,500 ev/s (100% of their mean)" in live
    assert "0 / 1 / 50 dashboards open: 0.0 / 4.0 / 200.0" in live
    assert "stand-in" in live and "not 50 Chromium tabs" in live
    raw["dashboard"]["live"] |= {  # type: ignore[index]
        "mode": "poll+sse",
        "viewers": {
            "pages": ["/ui"],
            "streams": ["sse /ui/overview/live", "poll /ui/x every 3 s"],
            "sse_events": 800,
            "sse_bytes": 2048,
            "polls": 5,
        },
    }
    live = "\n".join(dashboard_report.live_table(raw))
    assert "each dashboard has `/ui` open: 1 SSE streams and 1 polls" in live
    assert "they received 800 events (2 kB) and made 5 polls" in live


def test_the_headline_judges_the_dashboard_targets() -> None:
    head = dashboard_report.headline(_raw())
    assert head["ui_server_p95_ms_worst_page"] == 9.4
    assert head["ui_api_commands_ratio_n_vs_1"] == 50.0
    status = {t["key"]: t["status"] for t in verdicts(head)}
    assert status["ui_e2e_ratio"] == "met"
    assert status["ui_api_commands_ratio_n_vs_1"] == "missed"


def test_nothing_is_reported_when_the_part_did_not_run() -> None:
    assert dashboard_report.render_table({}) == []
    assert dashboard_report.live_table({}) == []
    assert dashboard_report.headline({})["ui_e2e_ratio"] is None
