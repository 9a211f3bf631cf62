"""CPU per event: the stages against a reference commit, and what the machine allows at best.

- ``stage_cpu_us_<backend>``: validator + persister + coach CPU µs per event in the sustained
  phase; ``stage_cpu_vs_reference_<backend>``: that over the same figure of the reference run
  (`REFERENCE`: ``bench/results/reference.json``, a ``latest.json`` of an earlier commit measured
  on this machine in the same session, the A/B of issue #15's CPU target);
- ``e2e_bound_<backend>_eps``: the rate at which the producer and Redis alone would fill
  every core (cores x 1e6 / their µs per event, as measured in the same phase): no pipeline
  with this producer and this Redis traffic can move more, whatever its stages cost;
  ``vs_baseline_bound_<backend>``: that bound over the lean baseline's events/s, the highest
  ``vs_baseline_<backend>`` runbus could reach with stages that cost nothing;
  ``vs_ceiling_bound_<backend>``: the same bound over the store's ceiling (rows/s), the highest
  ``vs_ceiling_<backend>`` runbus could reach;
- ``stage_budget_us_<backend>``: the CPU µs per event the three stages may spend together for
  runbus to reach the baseline target (`VS_BASELINE_TARGET`) on these cores, beside
  ``store_insert_us_<backend>``, what one ready row costs at the store's ceiling (one core):
  when the insert alone exceeds the budget, no pipeline that stores its events can meet it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from bench.report import VS_BASELINE_TARGET, Results, dig
from bench.stats import ratio, rounded
from shared.pipeline import PIPELINE

REFERENCE = Path(__file__).resolve().parent / "results" / "reference.json"
BACKENDS = ("sqlite", "postgres")


def stage_cpu(raw: Results, backend: str) -> float | None:
    """CPU µs per event of the pipeline's stages together (None if one is missing)."""
    per = dig(raw, backend, "sustained", "cpu_us_per_event") or {}
    spent = [per.get(stage) for stage in PIPELINE.stage_names]
    return None if None in spent else round(sum(spent), 1)


def bound_eps(raw: Results, backend: str, cores: int) -> float | None:
    """Events/s at which the producer and Redis alone use every core."""
    per = dig(raw, backend, "sustained", "cpu_us_per_event") or {}
    floor = [per.get("producer"), per.get("redis")]
    if None in floor or not sum(floor):
        return None
    return rounded(cores * 1e6 / sum(floor), 0)


def stage_budget_us(raw: Results, backend: str, cores: int) -> float | None:
    """CPU µs per event left to the stages at `VS_BASELINE_TARGET` times the baseline's rate."""
    per = dig(raw, backend, "sustained", "cpu_us_per_event") or {}
    floor = [per.get("producer"), per.get("redis")]
    baseline = dig(raw, "baseline", backend, "sustained", "eps")
    if None in floor or not baseline:
        return None
    return rounded(cores * 1e6 / (VS_BASELINE_TARGET * baseline) - sum(floor), 1)


def store_insert_us(raw: Results, backend: str) -> float | None:
    """µs one ready row costs at the store's ceiling."""
    rows_s = dig(raw, "ceiling", backend, "schema", "rows_s")
    return rounded(1e6 / rows_s, 1) if rows_s else None


def load_reference(path: Path = REFERENCE) -> Results | None:
    """The reference run's ``latest.json``, or None when there is none."""
    return json.loads(path.read_text()) if path.is_file() else None


def headline(raw: Results, reference: Results | None, cores: int | None = None) -> Results:
    """The flat keys of this module (None where a part did not run)."""
    cores = cores or os.cpu_count() or 1
    ref = (reference or {}).get("details", {})
    found: Results = {"cpu_reference_commit": dig(reference, "machine", "commit")}
    for backend in BACKENDS:
        spent = stage_cpu(raw, backend)
        found[f"stage_cpu_us_{backend}"] = spent
        found[f"stage_cpu_vs_reference_{backend}"] = ratio(spent, stage_cpu(ref, backend))
        bound = bound_eps(raw, backend, cores)
        found[f"e2e_bound_{backend}_eps"] = bound
        baseline = dig(raw, "baseline", backend, "sustained", "eps")
        found[f"vs_baseline_bound_{backend}"] = ratio(bound, baseline)
        ceiling = dig(raw, "ceiling", backend, "schema", "rows_s")
        found[f"vs_ceiling_bound_{backend}"] = ratio(bound, ceiling)
        found[f"stage_budget_us_{backend}"] = stage_budget_us(raw, backend, cores)
        found[f"store_insert_us_{backend}"] = store_insert_us(raw, backend)
    return found


def ab_table(raw: Results, head: Results, reference: Results | None) -> list[str]:
    """Each stage's CPU per event now and in the reference run, with the bound beside it."""
    if reference is None:
        return []
    ref = reference.get("details", {})
    lines = [
        f"| CPU µs per event vs commit {head.get('cpu_reference_commit')} | "
        + " | ".join(PIPELINE.stage_names)
        + f" | stages | ratio | producer + Redis bound | stage budget at {VS_BASELINE_TARGET}x"
        " baseline | ready-row insert |",
        "|---|" + "---:|" * (len(PIPELINE.stage_names) + 5),
    ]
    for backend, label in (("sqlite", "SQLite"), ("postgres", "PostgreSQL")):
        now = dig(raw, backend, "sustained", "cpu_us_per_event") or {}
        then = dig(ref, backend, "sustained", "cpu_us_per_event") or {}
        cells = [f"{_num(now.get(s))} ({_num(then.get(s))})" for s in PIPELINE.stage_names]
        total = f"{_num(stage_cpu(raw, backend))} ({_num(stage_cpu(ref, backend))})"
        ratio_ = head.get(f"stage_cpu_vs_reference_{backend}")
        bound = head.get(f"e2e_bound_{backend}_eps")
        budget, insert = (
            head.get(f"{k}_{backend}") for k in ("stage_budget_us", "store_insert_us")
        )
        lines.append(
            f"| {label}, now (reference) | " + " | ".join(cells)
            + f" | {total} | {_num(ratio_, 2)} | {_num(bound, 0)} ev/s | {_num(budget)} µs"
            f" | {_num(insert)} µs |"
        )  # fmt: skip
    return lines


def _num(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"
