"""The ``api_reads`` part in the report: headline keys, ratios and its Markdown table.

`BEFORE` is the run-detail figure of the code before issue #16's read path (commit `69046e9`),
measured by this part on the machine the issue's figures come from (see docs/performance.md):
the target is a ratio to it.
"""

from __future__ import annotations

from typing import Any

from bench.report import Results, dig
from bench.stats import ratio

#: ``api_reads`` against the API of commit 69046e9 (main before issue #16), full plan (3 rounds
#: of 10 s, medians), two runs on 2026-12-01 22:25 and 23:00 UTC (load average 6-9): the mean of
#: their medians (9.89 / 8.14 req/s, p99 1810 / 1760 ms, 31,130 / 37,432 µs CPU per request).
BEFORE: Results = {
    "commit": "69046e9",
    "run_detail_rps": 9.0,
    "run_detail_p99_ms": 1785.0,
    "run_detail_cpu_us_per_request": 34281.0,
}
LOADS = (
    ("coach_200", "coach stage, 200"),
    ("coach_304", "coach stage, 304 (If-None-Match)"),
    ("run_detail", "run detail, 1000 events"),
    ("coach_200_spread", "coach stage, 200, each request another of 50 documents"),
    ("coach_304_spread", "coach stage, 304, each request another of 50 documents"),
    ("coach_200_lone", "coach stage, 200, one poll at a time (1 connection)"),
    ("coach_304_lone", "coach stage, 304, one poll at a time (1 connection)"),
)


def _cost_ratio(one: Results, of: str, to: str) -> float | None:
    """How much a `of` request costs the API against a `to` one: CPU per request."""
    return ratio(dig(one, of, "cpu_us_per_request"), dig(one, to, "cpu_us_per_request"))


def headline(raw: Results) -> Results:
    """The part's figures and ratios (None where it did not run)."""
    part = dig(raw, "api_reads") or {}
    one, two = part.get("workers_1") or {}, part.get("workers_2") or {}
    bare = dig(one, "bare_get", "rps")
    found: Results = {"api_bare_get_rps": bare}
    for name, _ in LOADS:
        for key in ("rps", "p50_ms", "p99_ms", "cpu_us_per_request"):
            found[f"api_{name}_{key}"] = dig(one, name, key)
    rps = {name: dig(one, name, "rps") for name, _ in LOADS}
    coach = ("coach_200", "coach_304", "coach_200_spread", "coach_304_spread")
    p99 = [dig(one, name, "p99_ms") for name in coach]
    found |= {
        "api_coach_200_vs_bare_get": ratio(rps["coach_200"], bare),
        "api_coach_304_vs_bare_get": ratio(rps["coach_304"], bare),
        "api_coach_200_spread_vs_bare_get": ratio(rps["coach_200_spread"], bare),
        "api_coach_304_spread_vs_bare_get": ratio(rps["coach_304_spread"], bare),
        "api_coach_p99_ms_worst": _worst(*p99),
        # a 200's own cost is a read of its own: concurrent polls share their round trips
        "api_coach_304_cost_vs_200": _cost_ratio(one, "coach_304_lone", "coach_200_lone"),
        "api_coach_304_cost_vs_200_at_50": _cost_ratio(one, "coach_304", "coach_200"),
        "api_coach_304_cost_vs_200_spread_at_50": _cost_ratio(
            one, "coach_304_spread", "coach_200_spread"
        ),
        "api_coach_304_rps_cost_vs_200": ratio(rps["coach_200"], rps["coach_304"]),
        "api_run_detail_vs_before": ratio(rps["run_detail"], BEFORE["run_detail_rps"]),
        "api_run_detail_cpu_cheaper_than_before": ratio(
            BEFORE["run_detail_cpu_us_per_request"], dig(one, "run_detail", "cpu_us_per_request")
        ),
        "api_coach_200_rps_2_workers": dig(two, "coach_200", "rps"),
        "api_run_detail_rps_2_workers": dig(two, "run_detail", "rps"),
        "api_workers_2_vs_1_coach": ratio(dig(two, "coach_200", "rps"), rps["coach_200"]),
        "api_workers_2_vs_1_run_detail": ratio(dig(two, "run_detail", "rps"), rps["run_detail"]),
    }
    return found


def _worst(*values: Any) -> float | None:
    known = [float(v) for v in values if v is not None]
    return max(known) if known else None


def _num(value: Any, digits: int = 1) -> str:
    return "—" if value is None else f"{float(value):,.{digits}f}"


def _row(label: str, doc: Results | None, bare: float | None) -> str:
    doc = doc or {}
    vs = ratio(doc.get("rps"), bare)
    return (
        f"| {label} | {_num(doc.get('rps'), 0)} | {_num(doc.get('p50_ms'), 2)} "
        f"| {_num(doc.get('p99_ms'), 2)} | {_num(doc.get('cpu_us_per_request'), 0)} "
        f"| {_num(vs, 2)} |"
    )


def table(raw: Results) -> list[str]:
    """req/s, p50, p99, the API's CPU per request and the ratio to the bare GET, per load."""
    part = dig(raw, "api_reads")
    if not part:
        return []
    one, two = part.get("workers_1") or {}, part.get("workers_2") or {}
    bare = dig(one, "bare_get", "rps")
    head = (
        f"| API reads (wrk {part['wrk_threads']} threads; {part['connections']} connections, "
        f"run detail {part['run_detail_connections']}; median of {part['rounds']} × "
        f"{part['seconds']:g} s) | req/s | p50 ms | p99 ms | API CPU µs/req | vs bare GET |"
    )
    lines = [head, "|---|---:|---:|---:|---:|---:|"]
    bare_doc = one.get("bare_get") or {}
    lines.append(
        f"| bare redis.asyncio GET of the same key, one process | {_num(bare, 0)} "
        f"| {_num(bare_doc.get('p50_ms'), 2)} | {_num(bare_doc.get('p99_ms'), 2)} | — | 1.00 |"
    )
    for name, label in LOADS:
        lines.append(_row(f"{label}, 1 API process", one.get(name), bare))
    for name, label in LOADS:
        if name in two:
            lines.append(_row(f"{label}, RUNBUS_API_WORKERS=2", two.get(name), bare))
    before = BEFORE["run_detail_rps"]
    if before is not None:
        lines += [
            "",
            f"Run detail before (commit `{BEFORE['commit']}`, this part on this machine): "
            f"{_num(before, 0)} req/s, p99 {_num(BEFORE['run_detail_p99_ms'], 2)} ms, "
            f"{_num(BEFORE['run_detail_cpu_us_per_request'], 0)} µs of API CPU per request.",
        ]
    return lines
