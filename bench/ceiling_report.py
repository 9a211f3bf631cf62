"""The store-ceiling part in the report: its headline keys and its two tables."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.ceiling_sql import ORDER, Variant
from bench.report import Results
from bench.report import dig as _dig
from bench.stats import ratio, rounded

BACKENDS = (("sqlite", "SQLite"), ("postgres", "PostgreSQL"))
#: One row of the ceiling table: (a backend's ceiling results, its key) -> the cell.
Cell = Callable[[Any, str], str]


def headline(raw: Results) -> Results:
    """Rows/s of each backend's real schema, of 0001's (today's) and of the lean table, the
    ceiling over today's, and end to end / ceiling."""
    head: Results = {}
    for key, _ in BACKENDS:
        ceiling = _dig(raw, "ceiling", key, "schema", "rows_s")
        today = _dig(raw, "ceiling", key, "today", "rows_s")
        lean = _dig(raw, "ceiling", key, "lean", "rows_s")
        e2e = _dig(raw, key, "sustained", "eps")
        head[f"ceiling_{key}_rows_s"] = ceiling
        head[f"ceiling_today_{key}_rows_s"] = today
        head[f"ceiling_vs_today_{key}"] = ratio(ceiling, today)
        head[f"ceiling_lean_{key}_rows_s"] = lean
        head[f"ceiling_vs_lean_{key}"] = ratio(ceiling, lean)
        head[f"vs_ceiling_{key}"] = ratio(e2e, ceiling)
    return head


def baseline(variants: Any) -> float | None:
    """The whole copy's rate: the mean of its first and last measurement."""
    rates = [_dig(variants, tag, "rows_s") for tag in ("full", "full_again")]
    known = [float(r) for r in rates if r is not None]
    return sum(known) / len(known) if known else None


def noise(variants: Any) -> float | None:
    """How far apart the whole copy's two measurements are (a share of their mean)."""
    first, last = (_dig(variants, tag, "rows_s") for tag in ("full", "full_again"))
    mean = baseline(variants)
    if first is None or last is None or not mean:
        return None
    return rounded(abs(float(first) - float(last)) / mean, 3)


def gain(variants: Any, tag: str) -> float | None:
    """A variant's rate over the whole copy's: 1.25 means removing that thing buys 25%."""
    return ratio(_dig(variants, tag, "rows_s"), baseline(variants))


def _num(value: Any, unit: str = "", digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{float(value):,.{digits}f} {unit}".strip()


def _cells(raw: Results, fn: Cell) -> str:
    return " | ".join(fn(_dig(raw, "ceiling", key) or {}, key) for key, _ in BACKENDS)


def ceiling_table(raw: Results, head: Results) -> list[str]:
    """The ceiling of each backend, the lean table, and end to end against the ceiling."""
    if "ceiling" not in raw:
        return []
    count = _num(_dig(raw, "ceiling", "sqlite", "schema", "rows"))
    rows: list[tuple[str, Cell]] = [
        (f"Real history schema, inserts + commits only ({count} rows into a fresh one)",
         lambda d, k: _num(_dig(d, "schema", "rows_s"), "rows/s")),
        ("Batch of 1000, p50 / p99",
         lambda d, k: f"{_num(_dig(d, 'schema', 'batch_p50_ms'), '', 1)} / "
                      f"{_num(_dig(d, 'schema', 'batch_p99_ms'), 'ms', 1)}"),
        ("Today's reference: migration 0001 alone, its insert, batch by batch in turn",
         lambda d, k: _num(_dig(d, "today", "rows_s"), "rows/s")),
        ("**Real schema / today's** (target ≥ 2.0)",
         lambda d, k: f"**{_num(head.get(f'ceiling_vs_today_{k}'), '', 2)}**"),
        ("Lean 7-column table, one unique key, same insert",
         lambda d, k: _num(_dig(d, "lean", "rows_s"), "rows/s")),
        ("Real schema / lean table",
         lambda d, k: _num(head.get(f"ceiling_vs_lean_{k}"), "", 2)),
        ("End to end (sustained, same run) / real schema",
         lambda d, k: _num(head.get(f"vs_ceiling_{k}"), "", 2)),
        ("The persister's row preparation before the insert (records + parameters, untimed above)",
         lambda d, k: _num(d.get("prepare_us_per_row"), "µs/row", 1)),
    ]  # fmt: skip
    lines = ["| History store ceiling (ready rows, batches of 1000) | SQLite | PostgreSQL |",
             "|---|---:|---:|"]  # fmt: skip
    lines += [f"| {label} | {_cells(raw, fn)} |" for label, fn in rows]
    return lines


def _variant_cell(doc: Any, variant: Variant, tag: str) -> str:
    variants = _dig(doc, "variants")
    found = _dig(variants, tag)
    if isinstance(found, dict) and "skipped" in found:
        return f"{found['skipped']} | —"
    if tag == "full":
        first, last = _dig(variants, "full", "rows_s"), _dig(variants, "full_again", "rows_s")
        return f"{_num(first)} / {_num(last)} | noise {_num(noise(variants), '', 3)}"
    times = gain(variants, tag)
    return f"{_num(_dig(found, 'rows_s'))} | {'—' if times is None else f'{times:.2f}x'}"


def variants_table(raw: Results) -> list[str]:
    """Each throwaway schema copy with one thing removed: its rate, and its gain."""
    if "ceiling" not in raw:
        return []
    size = _num(_dig(raw, "ceiling", "sqlite", "variant_rows"))
    lines = [
        f"| Schema copy without … ({size} rows each, fresh) | SQLite rows/s | vs whole copy "
        "| PostgreSQL rows/s | vs whole copy |",
        "|---|---:|---:|---:|---:|",
    ]
    for variant, tag in ORDER:
        if tag == "full_again":
            continue  # shown beside the first measurement of the whole copy
        label = "nothing: the whole copy, first / last" if tag == "full" else variant.label
        cells = " | ".join(
            _variant_cell(_dig(raw, "ceiling", key), variant, tag) for key, _ in BACKENDS
        )
        lines.append(f"| {label} | {cells} |")
    return lines
