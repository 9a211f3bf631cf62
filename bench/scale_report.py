"""The cluster part and the capacity model in the report: headline keys and Markdown tables."""

from __future__ import annotations

from typing import Any

from bench.report import Results, dig
from shared.pipeline import PIPELINE

#: Columns of the per-run CPU table: every stage, then the shared servers.
CPU_COLUMNS: tuple[str, ...] = (*PIPELINE.stage_names, "producer", "redis", "postgres")


def _runs(raw: Results) -> list[tuple[str, Results]]:
    found = []
    for where, label in (("node", "one node"), ("cluster", "3+3 cluster")):
        for run in dig(raw, "cluster", where) or []:
            found.append((f"{label}, P={run.get('partitions')}", run))
    return found


def _eps_of(raw: Results, where: str, partitions: int) -> Any:
    runs = dig(raw, "cluster", where) or []
    return next((r.get("eps") for r in runs if r.get("partitions") == partitions), None)


def _total_cpu(run: Results) -> float | None:
    cpu = run.get("cpu_us_per_event") or {}
    found = [cpu.get(s) for s in PIPELINE.stage_names]
    return None if None in found else sum(float(v) for v in found if v is not None)


def partition_cost(runs: list[Results]) -> float | None:
    """CPU µs per event the stages spend per extra partition: the slope from fewest to most P."""
    known: list[tuple[int, float]] = []
    for run in runs:
        total = _total_cpu(run)
        if total is not None:
            known.append((int(run["partitions"]), total))
    known.sort()
    if len(known) < 2 or known[0][0] == known[-1][0]:
        return None
    (p0, c0), (p1, c1) = known[0], known[-1]
    return round((c1 - c0) / (p1 - p0), 2)


def headline(raw: Results) -> Results:
    """Headline keys of the cluster part (None where it did not run)."""
    clustered = dig(raw, "cluster", "cluster") or []
    top = max(clustered, key=lambda r: int(r["partitions"])) if clustered else {}
    return {
        "partition_cost_cpu_us_cluster": partition_cost(clustered),
        "partition_cost_cpu_us_node": partition_cost(dig(raw, "cluster", "node") or []),
        "e2e_node_p1_eps": _eps_of(raw, "node", 1),
        "e2e_node_p4_eps": _eps_of(raw, "node", 4),
        "e2e_cluster_eps": top.get("eps"),
        "cluster_partitions": top.get("partitions"),
        "shard_limit_xadd_eps": dig(raw, "cluster", "shard_limit_xadd_eps"),
        "producer_cluster_eps": dig(raw, "cluster", "producer_cluster_eps"),
    }


def _cell(value: Any, digits: int = 0) -> str:
    return "—" if value is None else f"{float(value):,.{digits}f}"


def cluster_table(raw: Results) -> list[str]:
    """One row per sustained run: events/s, then CPU µs per event of each process."""
    runs = _runs(raw)
    if not runs:
        return []
    lines = [
        "| Scale-out (PostgreSQL history) | ev/s | " + " | ".join(CPU_COLUMNS) + " |",
        "|---|---:|" + "---:|" * len(CPU_COLUMNS),
    ]
    for label, run in runs:
        cpu = run.get("cpu_us_per_event") or {}
        cells = [_cell(cpu.get(c), 1) for c in CPU_COLUMNS]
        lines.append(f"| {label} | {_cell(run.get('eps'))} | " + " | ".join(cells) + " |")
    part = raw.get("cluster") or {}
    lines += [
        "",
        f"CPU in µs per event; redis = the masters. Limit 1 on one master: "
        f"{_cell(part.get('shard_limit_xadd_eps'))} ev/s; one producer through the cluster "
        f"client: {_cell(part.get('producer_cluster_eps'))} ev/s; cluster start "
        f"{_cell(part.get('start_s'), 1)} s. One more partition costs the stages "
        f"{_cell(partition_cost(dig(raw, 'cluster', 'cluster') or []), 2)} µs/event on the "
        f"cluster, {_cell(partition_cost(dig(raw, 'cluster', 'node') or []), 2)} on one node.",
    ]
    return lines


def _row(name: str, doc: Results) -> str:
    procs = doc.get("processes") or {}
    stages = " / ".join(str(procs.get(s, "—")) for s in PIPELINE.stage_names)
    neck = doc.get("first_bottleneck") or {}
    return (
        f"| {name} | {stages} | {doc.get('producers')} | {doc.get('redis_shards')} "
        f"({doc.get('partitions')} partitions) | {doc.get('cores')} | "
        f"{_cell(doc.get('postgres_cores'), 1)} | {_cell(doc.get('dlq_stats_s_per_hour'), 1)} s | "
        f"{neck.get('name')} ({_cell(neck.get('ceiling_eps'))} ev/s) |"
    )


def capacity_table(head: Results) -> list[str]:
    """The capacity model at each target rate, and the inputs it rests on."""
    doc = head.get("capacity_model")
    if not doc:
        return []
    inputs = doc["inputs"]
    cpu = ", ".join(f"{s} {v:.1f}" for s, v in inputs["stage_cpu_us"].items())
    stages = " / ".join(PIPELINE.stage_names)
    lines = [
        f"| Capacity model | {stages} | producers | Redis shards | cores | PostgreSQL cores "
        "| `dlq stats` over 1 h at 1% invalid | first bottleneck |",
        "|---|---|---:|---|---:|---:|---:|---|",
        _row("100k ev/s", doc["at_100k"]),
        _row("1M ev/s", doc["at_1m"]),
        "",
        f"Model inputs (this run): CPU µs/event {cpu}; producer {_cell(inputs['producer_eps'])} "
        f"ev/s; shard ceiling {_cell(inputs['shard_eps'])} ev/s; PostgreSQL "
        f"{_cell(inputs['postgres_us_per_row'], 1)} µs/row; hot project "
        f"{_cell(inputs['hot_project_eps'])} ev/s; dead-letter scan "
        f"{_cell(inputs['dlq_scan_eps'])} /s.",
    ]
    return lines
