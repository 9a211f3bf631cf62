"""The api_reads part's own logic: wrk's command line and report, medians over rounds, the
headline ratios and verdicts, the report's table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench import api_reads, api_reads_report, wrk
from bench.plan import Plan
from bench.report import verdicts

REPORT = """Running 10s test @ http://127.0.0.1:8000/api/projects/1/coach/gold_set
  2 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     4.20ms    1.10ms  31.00ms   90.00%
    Req/Sec     5.90k   300.00     6.50k    70.00%
  Latency Distribution
     50%  812.00us
     75%    4.50ms
     90%    5.10ms
     99%    1.20s
  117000 requests in 10.01s, 120.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  11688.31
Transfer/sec:     11.99MB
"""


def test_wrk_reports_are_read_in_milliseconds() -> None:
    found = wrk.parse(REPORT)
    assert found["requests"] == 117_000 and found["seconds"] == 10.01
    assert found["rps"] == 11688.31
    assert (found["p50_ms"], found["p75_ms"], found["p99_ms"]) == (0.812, 4.5, 1200.0)
    assert found["bad_status"] == 4 and found["socket_errors"] == 3
    with pytest.raises(RuntimeError):
        wrk.needs_ok(found, "coach")
    clean = REPORT.replace("  Socket errors: connect 0, read 2, write 0, timeout 1\n", "")
    wrk.needs_ok(wrk.parse(clean.replace("  Non-2xx or 3xx responses: 4\n", "")), "coach")


def test_a_text_that_is_no_report_is_refused() -> None:
    with pytest.raises(ValueError):
        wrk.parse("unable to connect to 127.0.0.1:1 Connection refused")


def test_the_command_line_names_connections_headers_and_a_long_timeout() -> None:
    load = wrk.Load("http://h/x", 50, 3.0, {"If-None-Match": '"7"'})
    assert load.command("wrk") == [
        "wrk", "-t2", "-c50", "-d3s", f"--timeout={wrk.TIMEOUT_S}s",
        "-H", 'If-None-Match: "7"', "--latency", "http://h/x",
    ]  # fmt: skip
    assert wrk.Load("http://h/x", 1, 2.5).command("wrk")[1:4] == ["-t1", "-c1", "-d2.5s"]


def test_the_loads_of_each_worker_count() -> None:
    plan = Plan.small()
    scripts = {"coach_200_spread": Path("a.lua"), "coach_304_spread": Path("b.lua")}
    one = api_reads.loads("http://h", plan, '"3"', 1, scripts)
    assert set(one) == {"coach_200", "coach_304", "run_detail", *scripts, "coach_200_lone",
                        "coach_304_lone"}  # fmt: skip
    assert one["coach_304_lone"].connections == 1
    assert one["coach_304_spread"].script == Path("b.lua")
    assert one["coach_304"].headers == {"If-None-Match": '"3"'}
    assert one["run_detail"].connections == api_reads.RUN_DETAIL_CONNECTIONS
    assert one["coach_200"].connections == api_reads.CONNECTIONS == 50
    assert set(api_reads.loads("http://h", plan, '"3"', 2, scripts)) == {"coach_200", "run_detail"}
    assert plan.reads_s < Plan.full().reads_s and plan.reads_rounds < Plan.full().reads_rounds


def test_figures_are_medians_over_rounds() -> None:
    rounds = [{"rps": r, "p50_ms": 1.0, "p99_ms": r / 100, "cpu_us_per_request": None}
              for r in (300.0, 100.0, 200.0)]  # fmt: skip
    found = api_reads.summarised(rounds)
    assert found["rps"] == 200.0 and found["p99_ms"] == 2.0
    assert found["cpu_us_per_request"] is None and found["rounds"] == rounds


def part(bare: float, c200: float, c304: float, rd: float, two: float) -> dict[str, Any]:
    def load(rps: float, cpu: float) -> dict[str, Any]:
        return {"rps": rps, "p50_ms": 2.0, "p99_ms": 8.0, "cpu_us_per_request": cpu}

    return {"api_reads": {
        "wrk_threads": 2, "connections": 50, "run_detail_connections": 10, "rounds": 3,
        "seconds": 10.0,
        "workers_1": {"bare_get": {"rps": bare, "p50_ms": 1.0, "p99_ms": 3.0},
                      "coach_200": load(c200, 400.0), "coach_304": load(c304, 180.0),
                      "run_detail": load(rd, 9000.0),
                      "coach_200_spread": load(c200 / 2, 300.0),
                      "coach_304_spread": load(c304, 120.0),
                      "coach_200_lone": load(900.0, 200.0),
                      "coach_304_lone": load(2000.0, 70.0)},
        "workers_2": {"coach_200": load(two, 410.0), "run_detail": load(rd * 1.5, 9100.0)},
    }}  # fmt: skip


def test_the_headline_holds_each_ratio_and_its_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(api_reads_report.BEFORE, "run_detail_rps", 10.0)
    head = api_reads_report.headline(part(6000.0, 3000.0, 3600.0, 31.0, 4500.0))
    assert head["api_coach_200_vs_bare_get"] == 0.5
    assert head["api_coach_304_vs_bare_get"] == 0.6
    assert head["api_coach_304_cost_vs_200"] == 0.35  # against a 200 that reads on its own
    assert head["api_coach_304_cost_vs_200_at_50"] == 0.45
    assert head["api_coach_304_cost_vs_200_spread_at_50"] == 0.4
    assert head["api_coach_200_spread_vs_bare_get"] == 0.25
    assert head["api_run_detail_vs_before"] == 3.1
    assert head["api_workers_2_vs_1_coach"] == 1.5
    assert head["api_coach_p99_ms_worst"] == 8.0
    status = {v["key"]: v["status"] for v in verdicts(head)}
    assert status["api_coach_200_vs_bare_get"] == "met"
    assert status["api_coach_304_cost_vs_200"] == "met"
    assert status["api_run_detail_vs_before"] == "met"
    assert status["api_coach_p99_ms_worst"] == "met"
    slow = api_reads_report.headline(part(6000.0, 2000.0, 2000.0, 20.0, 2000.0))
    assert {v["key"]: v["status"] for v in verdicts(slow)}["api_coach_200_vs_bare_get"] == "missed"


def test_a_part_that_did_not_run_is_none_everywhere() -> None:
    head = api_reads_report.headline({})
    assert all(value is None for value in head.values())
    assert api_reads_report.table({}) == []


def test_the_table_has_a_row_per_load_and_worker_count() -> None:
    lines = api_reads_report.table(part(6000.0, 3000.0, 3600.0, 31.0, 4500.0))
    assert lines[0].startswith("| API reads (wrk 2 threads; 50 connections")
    body = "\n".join(lines)
    assert "| bare redis.asyncio GET of the same key, one process | 6,000 |" in body
    assert "| coach stage, 200, 1 API process | 3,000 | 2.00 | 8.00 | 400 | 0.50 |" in body
    assert "| run detail, 1000 events, RUNBUS_API_WORKERS=2 | 46 |" in body


def test_a_rotation_script_names_every_request_once_in_lua() -> None:
    script = wrk.rotation([("/a", {}), ('/b"\\', {"If-None-Match": '"7"'})])
    assert '{"/a",{}}' in script
    assert '{"/b\\"\\\\",{["If-None-Match"]="\\"7\\""}}' in script
    assert "function request()" in script
    load = wrk.Load("http://h/x", 50, 3.0, script=Path("/tmp/s.lua"))
    assert load.command("wrk")[-4:] == ["-s", "/tmp/s.lua", "--latency", "http://h/x"]


def test_the_spread_holds_the_headline_document_and_fifty_in_all() -> None:
    docs = api_reads.spread()
    assert len(docs) == len(set(docs)) == api_reads.CONNECTIONS
    assert (api_reads.PROJECT, api_reads.STAGE) in docs
