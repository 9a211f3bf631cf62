"""The capacity model: what carries 100k and 1M events/s, from this run's own measurements.

Inputs (all measured in the same run, in ``latest.json`` under ``capacity_model.inputs``):

- CPU µs per event of each stage (`shared.pipeline.PIPELINE`) on the cluster: the lowest of its
  runs (one per P; the cost of a partition is flat, and a shared machine's load only adds);
- the producer's rate: one process through a cluster client over P partitions;
- a shard's ceiling: the lower of limit 1 on one master (one process's pipelined XADD) and
  1e6 / the Redis masters' CPU µs per event of the whole pipeline (a master runs on one core);
- PostgreSQL: its server CPU µs per history row, and the best rows/s one persister reached;
- a hot project: the coach's events/s on one partition (a project's coach keys share one hash
  tag, so one project's merges run one at a time in one slot, whatever the process count);
- the dead-letter tools: dead letters `runbus dlq stats` scans per second.

Arithmetic, for a target rate R: processes of a stage = ceil(R × µs/event / 1e6) (one core
each, fully busy: no headroom); producers = ceil(R / producer rate); shards = ceil(R / shard
ceiling); partitions = `PARTITIONS_PER_SHARD` × shards (an even spread, as 12 over 3 masters);
PostgreSQL cores = R × its µs/row / 1e6. The first bottleneck is PostgreSQL when R is above
what one primary of `POSTGRES_CORES` cores ingests, else a hot project (the one ceiling more
processes and shards do not lift); the dead-letter scan time is reported beside it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from bench.report import Results, dig
from shared.pipeline import PIPELINE

#: Partitions per Redis shard in the model (12 over 3 masters spread 4/4/4).
PARTITIONS_PER_SHARD = 4
#: Cores of the one PostgreSQL primary the model assumes (a large single server).
POSTGRES_CORES = 16
#: Share of the events assumed invalid when sizing the dead-letter scans.
INVALID_SHARE = 0.01
#: The rates the model is computed at.
TARGETS = {"at_100k": 100_000, "at_1m": 1_000_000}


@dataclass(frozen=True)
class Inputs:
    """Everything the model rests on (measured, except the named constants)."""

    stage_cpu_us: dict[str, float]
    producer_eps: float
    shard_limit_xadd_eps: float
    redis_us_per_event: float | None
    postgres_us_per_row: float | None
    postgres_ingest_eps: float | None
    hot_project_eps: float | None
    dlq_scan_eps: float | None

    @property
    def shard_eps(self) -> float:
        """One shard's ceiling for the whole pipeline (the lower of the two measures)."""
        if not self.redis_us_per_event:
            return self.shard_limit_xadd_eps
        return min(self.shard_limit_xadd_eps, 1e6 / self.redis_us_per_event)

    @property
    def postgres_ceiling_eps(self) -> float | None:
        """Rows/s one primary of `POSTGRES_CORES` cores ingests, from its CPU per row."""
        if not self.postgres_us_per_row:
            return None
        return POSTGRES_CORES * 1e6 / self.postgres_us_per_row


def _per_core(rate: float, us_per_event: float) -> int:
    return max(1, math.ceil(rate * us_per_event / 1e6))


def _bottleneck(inputs: Inputs, rate: float) -> dict[str, Any]:
    ceiling = inputs.postgres_ceiling_eps
    if ceiling is not None and ceiling < rate:
        why = (
            f"one PostgreSQL primary of {POSTGRES_CORES} cores ingests about {ceiling:,.0f} rows/s"
        )
        return {"name": "postgresql", "ceiling_eps": round(ceiling), "why": why}
    hot = inputs.hot_project_eps
    why = "one project's coach merges run in one slot, one at a time: more processes do not help"
    return {"name": "hot_project", "ceiling_eps": None if hot is None else round(hot), "why": why}


def at(inputs: Inputs, rate: float) -> dict[str, Any]:
    """What carries `rate` events/s, and where it stops first."""
    processes = {s: _per_core(rate, us) for s, us in inputs.stage_cpu_us.items()}
    producers = math.ceil(rate / inputs.producer_eps)
    shards = math.ceil(rate / inputs.shard_eps)
    pg_us = inputs.postgres_us_per_row
    scan = inputs.dlq_scan_eps
    return {
        "target_eps": rate,
        "processes": processes,
        "producers": producers,
        "redis_shards": shards,
        "partitions": shards * PARTITIONS_PER_SHARD,
        "cores": sum(processes.values()) + producers + shards,
        "postgres_cores": None if pg_us is None else round(rate * pg_us / 1e6, 1),
        "dlq_stats_s_per_hour": None if not scan else round(rate * INVALID_SHARE * 3600 / scan, 1),
        "first_bottleneck": _bottleneck(inputs, rate),
    }


def lowest_cpu(runs: Any) -> dict[str, float]:
    """Each process's lowest CPU µs per event over the runs (other load only ever adds to it)."""
    found: dict[str, float] = {}
    for run in runs or []:
        for name, value in (run.get("cpu_us_per_event") or {}).items():
            if value is not None and value > 0:
                found[name] = min(float(value), found.get(name, float(value)))
    return found


def _dlq_scan_eps(raw: Results) -> float | None:
    count, seconds = (
        dig(raw, "dead_letter_reads", "dead_letters"),
        dig(raw, "dead_letter_reads", "stats_s"),
    )
    return float(count) / float(seconds) if count and seconds else None


def inputs_from(raw: Results) -> Inputs | None:
    """The model's inputs from a run's raw results; None when the cluster part did not run."""
    cpu = lowest_cpu(dig(raw, "cluster", "cluster"))
    producer, shard = (
        dig(raw, "cluster", "producer_cluster_eps"),
        dig(raw, "cluster", "shard_limit_xadd_eps"),
    )
    if not all(cpu.get(s) for s in PIPELINE.stage_names) or not producer or not shard:
        return None
    nodes: list[Results] = dig(raw, "cluster", "node") or []
    one = next((r for r in nodes if r.get("partitions") == 1), {})
    ingest = [r.get("history_eps") or 0 for r in (dig(raw, "cluster", "cluster") or [])]
    return Inputs(
        stage_cpu_us={s: float(cpu[s]) for s in PIPELINE.stage_names},
        producer_eps=float(producer),
        shard_limit_xadd_eps=float(shard),
        redis_us_per_event=cpu.get("redis"),
        postgres_us_per_row=cpu.get("postgres"),
        postgres_ingest_eps=max(ingest) or None,
        hot_project_eps=one.get("coach_eps"),
        dlq_scan_eps=_dlq_scan_eps(raw),
    )


def model(raw: Results) -> Results | None:
    """``capacity_model``: inputs, and the model at each target rate (None without inputs)."""
    inputs = inputs_from(raw)
    if inputs is None:
        return None
    doc: Results = {
        "inputs": asdict(inputs) | {"shard_eps": round(inputs.shard_eps)},
        "assumptions": {
            "postgres_cores": POSTGRES_CORES,
            "partitions_per_shard": PARTITIONS_PER_SHARD,
            "invalid_share": INVALID_SHARE,
            "one_core_per_process": True,
        },
    }
    return doc | {name: at(inputs, rate) for name, rate in TARGETS.items()}
