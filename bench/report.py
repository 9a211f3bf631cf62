"""From the raw results to ``latest.json`` (headline keys + details) and the Markdown table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.stats import ratio
from shared.pipeline import PIPELINE

Results = dict[str, Any]

#: Issue #15's end-to-end targets: runbus over the lean baseline, and over the store's ceiling.
VS_BASELINE_TARGET = 1.5
VS_CEILING_TARGET = 0.8

#: (target, key of the measured figure, test) for each target of the issue.
TARGETS: tuple[tuple[str, str, Callable[[float], bool]], ...] = (
    ("Sustained SQLite >= 50% of limit 1", "ratio_sqlite", lambda v: v >= 0.5),
    ("Sustained PostgreSQL >= 40% of limit 1", "ratio_postgres", lambda v: v >= 0.4),
    (
        "Sustained SQLite >= about 20k ev/s (the issue's figure)",
        "e2e_sqlite_eps",
        lambda v: v >= 20_000,
    ),
    (
        f"End to end SQLite >= {VS_BASELINE_TARGET}x the lean baseline",
        "vs_baseline_sqlite",
        lambda v: v >= VS_BASELINE_TARGET,
    ),
    (
        f"End to end PostgreSQL >= {VS_BASELINE_TARGET}x the lean baseline writing PostgreSQL",
        "vs_baseline_postgres",
        lambda v: v >= VS_BASELINE_TARGET,
    ),
    (
        "Store ceiling SQLite >= 2x today's schema (0001, same run)",
        "ceiling_vs_today_sqlite",
        lambda v: v >= 2.0,
    ),
    (
        "Store ceiling PostgreSQL >= 2x today's schema (0001, same run)",
        "ceiling_vs_today_postgres",
        lambda v: v >= 2.0,
    ),
    (
        f"End to end SQLite >= {VS_CEILING_TARGET}x the store's ceiling (ready rows, same run)",
        "vs_ceiling_sqlite",
        lambda v: v >= VS_CEILING_TARGET,
    ),
    (
        f"End to end PostgreSQL >= {VS_CEILING_TARGET}x the store's ceiling (ready rows, same run)",
        "vs_ceiling_postgres",
        lambda v: v >= VS_CEILING_TARGET,
    ),
    (
        "CPU µs/event of the stages, SQLite <= 0.4x the reference commit's",
        "stage_cpu_vs_reference_sqlite",
        lambda v: v <= 0.4,
    ),
    (
        "CPU µs/event of the stages, PostgreSQL <= 0.4x the reference commit's",
        "stage_cpu_vs_reference_postgres",
        lambda v: v <= 0.4,
    ),
    ("p99 publish -> history < 15 ms at 1k/s, SQLite", "latency_p99_ms_at_1k", lambda v: v < 15),
    (
        "p99 publish -> history < 15 ms at 1k/s, PostgreSQL",
        "latency_p99_ms_at_1k_postgres",
        lambda v: v < 15,
    ),
    ("Run-detail p99 < 10 ms at 1M rows", "run_detail_p99_ms_1m", lambda v: v < 10),
    ("Each service RSS < 200 MB (sustained load)", "rss_mb_max", lambda v: v < 200),
    ("Each service RSS < 200 MB under a 1M backlog", "rss_backlog_mb_max", lambda v: v < 200),
    (
        "End to end with 50 live dashboards within noise (>= 90%) of none",
        "ui_e2e_ratio",
        lambda v: v >= 0.9,
    ),
    (
        "API's Redis commands/s with 50 dashboards <= 1.2x with one",
        "ui_api_commands_ratio_n_vs_1",
        lambda v: v <= 1.2,
    ),
    ("Coach 200 >= 0.5x a bare GET loop, per API process", "api_coach_200_vs_bare_get",
     lambda v: v >= 0.5),
    ("Coach 304 >= 0.5x a bare GET loop, per API process", "api_coach_304_vs_bare_get",
     lambda v: v >= 0.5),
    ("Coach p99 < 10 ms at 50 connections", "api_coach_p99_ms_worst", lambda v: v < 10),
    ("Coach 304 costs <= half a 200 (API CPU per request, one poll at a time)",
     "api_coach_304_cost_vs_200",
     lambda v: v <= 0.5),
    ("Run detail (1000 events) >= 3x the before figure", "api_run_detail_vs_before",
     lambda v: v >= 3),
)  # fmt: skip


def dig(doc: Any, *path: str) -> Any:
    """doc[path[0]][path[1]]..., None as soon as something is missing."""
    for key in path:
        if not isinstance(doc, dict) or key not in doc:
            return None
        doc = doc[key]
    return doc


def _worst(*values: Any) -> float | None:
    known = [float(v) for v in values if v is not None]
    return max(known) if known else None


def _rss_max(raw: Results) -> float | None:
    peaks = [
        dig(raw, backend, "memory", "rss_peak_mb", service)
        for backend in ("sqlite", "postgres")
        for service in PIPELINE.stage_names
    ]
    return _worst(*peaks)


def baseline_headline(raw: Results) -> Results:
    """The lean baseline's figures and runbus's ratio to each (same run)."""
    found: Results = {}
    for backend in ("sqlite", "postgres"):
        base = dig(raw, "baseline", backend, "sustained", "eps")
        found[f"baseline_{backend}_evs"] = base
        found[f"vs_baseline_{backend}"] = ratio(dig(raw, backend, "sustained", "eps"), base)
    return found


def headline(raw: Results) -> Results:
    """The keys the issue asks for (numbers, None where a part did not run)."""
    limit1 = dig(raw, "limits", "limit_xadd_eps")
    sqlite, postgres = (
        dig(raw, "sqlite", "sustained", "eps"),
        dig(raw, "postgres", "sustained", "eps"),
    )
    rd_1m = [dig(raw, "run_detail", b, "1000000", "p99_ms") for b in ("sqlite", "postgres")]
    return {
        "limit_xadd_eps": limit1,
        "limit_consume_eps": dig(raw, "limits", "limit_consume_eps"),
        "limit_xadd_asyncio_eps": dig(raw, "limits", "limit_xadd_asyncio_eps"),
        "e2e_sqlite_eps": sqlite,
        "e2e_postgres_eps": postgres,
        "ratio_sqlite": ratio(sqlite, limit1),
        "ratio_postgres": ratio(postgres, limit1),
        "latency_p99_ms_at_1k": dig(raw, "sqlite", "latency_1k", "history", "p99_ms"),
        "latency_p99_ms_at_1k_postgres": dig(raw, "postgres", "latency_1k", "history", "p99_ms"),
        "coach_latency_p99_ms_at_1k": dig(raw, "sqlite", "latency_1k", "coach", "p99_ms"),
        "latency_p99_ms_at_half_max": dig(raw, "sqlite", "latency_half", "history", "p99_ms"),
        "dead_letter_path_eps": dig(raw, "sqlite", "dead_letter", "routed_eps"),
        "run_detail_p99_ms_100k": _worst(
            *(dig(raw, "run_detail", b, "100000", "p99_ms") for b in ("sqlite", "postgres"))
        ),
        "run_detail_p99_ms_1m": None if None in rd_1m else _worst(*rd_1m),
        "run_detail_p99_ms_1m_gc_frozen": _worst(
            *(
                dig(raw, "run_detail", b, "1000000", "gc_frozen", "p99_ms")
                for b in ("sqlite", "postgres")
            )
        ),
        "run_detail_p99_ms_10m_postgres": dig(raw, "run_detail", "postgres", "10000000", "p99_ms"),
        "dlq_stats_s": dig(raw, "dead_letter_reads", "stats_s"),
        "dlq_tail_p99_ms": dig(raw, "dead_letter_reads", "tail", "p99_ms"),
        "rss_mb_max": _rss_max(raw),
        "rss_anon_mb_max": _worst(
            *(
                dig(raw, b, "memory", "rss_anon_peak_mb", s)
                for b in ("sqlite", "postgres")
                for s in PIPELINE.stage_names
            )
        ),
        "rss_backlog_mb_max": dig(raw, "backlog", "rss_mb_max"),
        "rss_backlog_anon_mb_max": dig(raw, "backlog", "rss_anon_mb_max"),
        **baseline_headline(raw),
    }


def verdicts(head: Results) -> list[Results]:
    """Each target with its measured figure: met, missed, or not run."""
    found = []
    for name, key, test in TARGETS:
        value = head.get(key)
        status = "not run" if value is None else ("met" if test(float(value)) else "missed")
        found.append({"target": name, "key": key, "measured": value, "status": status})
    return found
