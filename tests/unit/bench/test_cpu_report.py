"""The CPU A/B against a reference run and the producer + Redis bound."""

from __future__ import annotations

from typing import Any

from bench.cpu_report import ab_table, bound_eps, headline, stage_cpu


def run(validator: float, persister: float, coach: float, eps: float = 10_000) -> dict[str, Any]:
    cpu = {"validator": validator, "persister": persister, "coach": coach,
           "producer": 12.0, "redis": 13.0}  # fmt: skip
    return {
        "sqlite": {"sustained": {"eps": eps, "cpu_us_per_event": cpu}},
        "baseline": {"sqlite": {"sustained": {"eps": 40_000.0}}},
        "ceiling": {"sqlite": {"schema": {"rows_s": 50_000.0}}},
    }


def test_the_stages_are_summed_and_compared_with_the_reference() -> None:
    now, then = run(10, 20, 12), {"machine": {"commit": "abc"}, "details": run(30, 50, 40)}
    head = headline(now, then, cores=2)
    assert stage_cpu(now, "sqlite") == 42.0 and head["stage_cpu_us_sqlite"] == 42.0
    assert head["stage_cpu_vs_reference_sqlite"] == round(42 / 120, 3)
    assert head["cpu_reference_commit"] == "abc"
    assert head["stage_cpu_us_postgres"] is None  # a part that did not run stays unknown


def test_the_bound_is_what_the_producer_and_redis_leave_on_every_core() -> None:
    raw = run(10, 20, 12)
    assert bound_eps(raw, "sqlite", cores=2) == 2e6 / 25
    head = headline(raw, None, cores=2)
    assert head["vs_baseline_bound_sqlite"] == round(80_000 / 40_000, 3)
    assert head["stage_cpu_vs_reference_sqlite"] is None and head["cpu_reference_commit"] is None


def test_the_table_shows_now_and_then() -> None:
    now, then = run(10, 20, 12), {"machine": {"commit": "abc"}, "details": run(30, 50, 40)}
    lines = ab_table(now, headline(now, then, cores=2), then)
    assert "commit abc" in lines[0] and "| 10.0 (30.0) | 20.0 (50.0) | 12.0 (40.0) |" in lines[2]
    assert lines[2].endswith("| 8.3 µs | 20.0 µs |")
    assert ab_table(now, {}, None) == []


def test_the_stage_budget_is_what_the_target_leaves_after_the_producer_and_redis() -> None:
    # Given 2 cores, a baseline at 40k ev/s and producer + Redis at 25 µs per event
    head = headline(run(10, 20, 12), None, cores=2)
    # Then 1.5x the baseline (60k ev/s) leaves 2e6 / 60k - 25 = 8.3 µs to the three stages,
    # below the 20 µs a ready row costs at a 50k rows/s ceiling
    assert head["stage_budget_us_sqlite"] == round(2e6 / 60_000 - 25, 1)
    assert head["store_insert_us_sqlite"] == 20.0
    # And the bound (80k ev/s) is 1.6x that ceiling
    assert head["vs_ceiling_bound_sqlite"] == 1.6
    assert head["stage_budget_us_postgres"] is None and head["store_insert_us_postgres"] is None
