"""The store-ceiling part's pure side: batching, rates, the schema variants, the report.

No servers: the variants must still apply to the real migration's text (or say they no longer
do), the rates and ratios must be the usual ones, and the report must show "not run" rather
than invent a ceiling.
"""

from __future__ import annotations

from typing import Any

import pytest

from bench import ceiling, ceiling_report, ceiling_sql
from bench.markdown import render
from bench.report import headline, verdicts
from services.history import migrations


def test_batches_are_consecutive_and_the_last_may_be_short() -> None:
    assert ceiling.batches(list(range(5)), 2) == [[0, 1], [2, 3], [4]]
    assert ceiling.batches([], 2) == []


def test_timing_is_rows_over_the_summed_insert_time() -> None:
    found = ceiling.timing([0.1, 0.3], 2000)
    assert found["rows_s"] == 5000
    assert found["seconds"] == 0.4
    assert found["batch_p50_ms"] == 100.0 and found["batch_p99_ms"] == 300.0


def test_every_text_edit_applies_once_to_the_real_sqlite_migration() -> None:
    script = migrations.migrations("sqlite")[0].sql
    for variant in ceiling_sql.VARIANTS:
        out = ceiling_sql.edited(script, variant)
        assert out is not None, variant.key
        if variant.sqlite_edit is not None:
            assert out != script and variant.sqlite_edit[0] not in out


def test_an_edit_whose_text_is_gone_is_refused_not_ignored() -> None:
    variant = ceiling_sql.Variant("x", "x", sqlite_edit=("NO SUCH TEXT", ""))
    assert ceiling_sql.edited("CREATE TABLE t (a)", variant) is None


def test_the_index_variants_name_the_migrations_indexes() -> None:
    for backend in ("sqlite", "postgres"):
        script = migrations.migrations(backend)[0].sql
        for name in ("history_run", "history_parent", "history_project"):
            assert f"CREATE INDEX {name} ON history" in script


def test_without_conflict_drops_only_the_conflict_clause() -> None:
    stmt = "INSERT INTO t (a) VALUES (?) ON CONFLICT (a) DO NOTHING"
    assert ceiling_sql.without_conflict(stmt) == "INSERT INTO t (a) VALUES (?)"
    with pytest.raises(ValueError):
        ceiling_sql.without_conflict("INSERT INTO t (a) VALUES (?)")


def test_the_order_measures_the_whole_copy_first_and_last() -> None:
    tags = [tag for _, tag in ceiling_sql.ORDER]
    assert tags[0] == "full" and tags[-1] == "full_again"
    assert len(set(tags)) == len(tags) == len(ceiling_sql.VARIANTS) + 2


def _part(
    schema: float, lean: float, variants: dict[str, float], today: float = 50_000
) -> dict[str, Any]:
    return {
        "schema": {"rows": 1000, "rows_s": schema, "batch_p50_ms": 5.0, "batch_p99_ms": 9.0},
        "today": {"rows": 1000, "rows_s": today, "batch_p50_ms": 9.0, "batch_p99_ms": 20.0},
        "lean": {"rows_s": lean},
        "prepare_us_per_row": 7.5,
        "variant_rows": 1000,
        "variants": {k: {"rows_s": v} for k, v in variants.items()},
    }


RAW: dict[str, Any] = {
    "sqlite": {"sustained": {"eps": 20_000.0}},
    "postgres": {"sustained": {"eps": 16_000.0}},
    "ceiling": {
        "sqlite": _part(100_000, 300_000, {"full": 90_000, "no_history_run": 110_000,
                                            "full_again": 110_000}),
        "postgres": _part(20_000, 40_000, {"full": 20_000, "full_again": 20_000}, 12_500),
    },
}  # fmt: skip


def test_headline_holds_each_ceiling_and_end_to_end_against_it() -> None:
    head = ceiling_report.headline(RAW)
    assert head["ceiling_sqlite_rows_s"] == 100_000
    assert head["vs_ceiling_sqlite"] == 0.2
    assert head["vs_ceiling_postgres"] == 0.8
    assert head["ceiling_vs_lean_sqlite"] == 0.333


def test_headline_holds_the_ceiling_against_todays_schema_measured_beside_it() -> None:
    head = ceiling_report.headline(RAW)
    assert head["ceiling_today_sqlite_rows_s"] == 50_000
    assert head["ceiling_vs_today_sqlite"] == 2.0
    assert head["ceiling_vs_today_postgres"] == 1.6
    assert ceiling_report.headline({})["ceiling_vs_today_sqlite"] is None


def test_the_two_x_target_is_met_at_2_and_missed_below() -> None:
    head = headline(RAW) | ceiling_report.headline(RAW)
    found = {v["key"]: v["status"] for v in verdicts(head)}
    assert found["ceiling_vs_today_sqlite"] == "met"
    assert found["ceiling_vs_today_postgres"] == "missed"
    bare = {v["key"]: v["status"] for v in verdicts(ceiling_report.headline({}))}
    assert bare["ceiling_vs_today_postgres"] == "not run"


def test_gain_is_over_the_mean_of_the_first_and_last_whole_copy() -> None:
    variants = RAW["ceiling"]["sqlite"]["variants"]
    assert ceiling_report.baseline(variants) == 100_000
    assert ceiling_report.gain(variants, "no_history_run") == 1.1
    assert ceiling_report.noise(variants) == 0.2
    assert ceiling_report.gain(variants, "no_such_variant") is None


def test_the_target_is_met_at_0_8_and_not_run_without_the_part() -> None:
    head = headline(RAW) | ceiling_report.headline(RAW)
    found = {v["key"]: v["status"] for v in verdicts(head)}
    assert found["vs_ceiling_sqlite"] == "missed" and found["vs_ceiling_postgres"] == "met"
    bare = {v["key"]: v["status"] for v in verdicts(ceiling_report.headline({}))}
    assert bare["vs_ceiling_sqlite"] == "not run"


def test_the_report_shows_both_tables_and_marks_what_is_missing() -> None:
    head = headline(RAW) | ceiling_report.headline(RAW)
    text = render(RAW, head | {"targets": verdicts(head)})
    assert "| History store ceiling (ready rows, batches of 1000) | SQLite | PostgreSQL |" in text
    assert "100,000 rows/s | 20,000 rows/s" in text
    assert "| **Real schema / today's** (target ≥ 2.0) | **2.00** | **1.60** |" in text
    assert "its insert, batch by batch in turn | 50,000 rows/s | 12,500 rows/s |" in text
    assert "| index history_run | 110,000 | 1.10x | — | — |" in text
    assert "noise 0.200" in text
    assert "History store ceiling" not in render({}, {})


def test_todays_schema_and_the_new_one_are_timed_batch_by_batch_in_turn() -> None:
    # given two in-memory databases and three batches for each
    import sqlite3

    conns = (sqlite3.connect(":memory:", isolation_level=None),
             sqlite3.connect(":memory:", isolation_level=None))  # fmt: skip
    for conn in conns:
        conn.execute("CREATE TABLE t (a INTEGER)")
    calls: list[int] = []
    conns[0].set_trace_callback(lambda sql: calls.append(0) if sql.startswith("INSERT") else None)
    conns[1].set_trace_callback(lambda sql: calls.append(1) if sql.startswith("INSERT") else None)
    work = [[(i,), (i + 1,)] for i in range(0, 6, 2)]
    # when they are measured side by side
    spent = ceiling._side_by_side(conns, ("INSERT INTO t VALUES (?)",) * 2, (work, work))
    # then each batch of each is timed once, every row is stored, and neither always goes first
    assert [len(s) for s in spent] == [3, 3] and all(t > 0 for s in spent for t in s)
    assert [c.execute("SELECT count(*) FROM t").fetchone()[0] for c in conns] == [6, 6]
    firsts = [calls[i] for i in range(0, len(calls), 4)]
    assert calls[:4] == [0, 0, 1, 1] and calls[4:8] == [1, 1, 0, 0] and firsts == [0, 1, 0]
