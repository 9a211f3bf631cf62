"""The Markdown report: the machine, one table of every figure, and the targets."""

from __future__ import annotations

from typing import Any

from bench import api_reads_report, ceiling_report, cpu_report, dashboard_report, scale_report
from bench.report import Results, dig

BACKENDS = (("sqlite", "SQLite"), ("postgres", "PostgreSQL"))
SERVICES = ("validator", "persister", "coach")


def num(value: Any, unit: str = "", digits: int = 0) -> str:
    """A figure for the table; an em dash when it was not measured."""
    if value is None:
        return "—"
    text = f"{float(value):,.{digits}f}"
    return f"{text} {unit}".strip()


def _lat(doc: Any) -> str:
    if not isinstance(doc, dict) or doc.get("p50_ms") is None:
        return "—"
    return f"{doc['p50_ms']:.1f} / {doc['p95_ms']:.1f} / {doc['p99_ms']:.1f} ms"


def _limits(raw: Results) -> list[tuple[str, str]]:
    lim = raw.get("limits") or {}
    return [
        ("Limit 1: one process, pipelined XADD of 300-byte JSON (batches of 1000)",
         num(lim.get("limit_xadd_eps"), "ev/s")),
        ("Limit 2: one process, XREADGROUP COUNT 1000 + one XACK per batch",
         num(lim.get("limit_consume_eps"), "ev/s")),
        ("Same with the asyncio client the services use (XADD / consume)",
         f"{num(lim.get('limit_xadd_asyncio_eps'))} / "
         f"{num(lim.get('limit_consume_asyncio_eps'), 'ev/s')}"),
        ("Limit 1 encoding each event on the fly (the benchmark's producer, unhindered)",
         num(lim.get("limit_xadd_encoding_eps"), "ev/s")),
    ]  # fmt: skip


def _pipeline(raw: Results, head: Results) -> list[tuple[str, str]]:
    rows = []
    for key, label in BACKENDS:
        sus = dig(raw, key, "sustained") or {}
        share = head.get(f"ratio_{key}")
        pct = f" ({share:.0%} of limit 1)" if share is not None else ""
        detail = f"history {num(sus.get('history_eps'))}, coach {num(sus.get('coach_eps'))}"
        rows.append(
            (f"Sustained end to end, {label} (history and coach cache)",
             f"{num(sus.get('eps'), 'ev/s')}{pct}; {detail}")
        )  # fmt: skip
    for key, label in BACKENDS:
        for phase in ("latency_1k", "latency_half"):
            lat = dig(raw, key, phase)
            if lat is None:
                continue
            rate = num(lat.get("offered_eps"), "ev/s")
            rows.append(
                (f"Publish → history p50/p95/p99 at {rate}, {label}", _lat(lat.get("history")))
            )
            rows.append(
                (f"Publish → coach state p50/p95/p99 at {rate}, {label}", _lat(lat.get("coach")))
            )
    dead = dig(raw, "sqlite", "dead_letter") or {}
    rows.append(
        ("Dead-letter path, 50% invalid, SQLite (events routed)",
         f"{num(dead.get('routed_eps'), 'ev/s')} ({num(dead.get('dead_eps'))} dead-lettered/s)")
    )  # fmt: skip
    return rows


def _p50_p99(doc: Any) -> str:
    if not isinstance(doc, dict) or doc.get("p99_ms") is None:
        return str(doc["skipped"]) if isinstance(doc, dict) and "skipped" in doc else "—"
    return f"{doc['p50_ms']:.1f} / {doc['p99_ms']:.1f} ms"


def _growth(raw: Results) -> list[tuple[str, str]]:
    rows = []
    for key, label in BACKENDS:
        for size, name in (("100000", "100k"), ("1000000", "1M"), ("10000000", "10M")):
            doc = dig(raw, "run_detail", key, size)
            if doc is None and size == "10000000":
                continue
            frozen = dig(doc, "gc_frozen")
            value = _p50_p99(doc) + (f" ({_p50_p99(frozen)})" if frozen else "")
            label_ = f"Run detail, 1000-event run, p50/p99, {name} rows, {label} (gc frozen)"
            rows.append((label_, value))
    dlq = dig(raw, "dead_letter_reads") or {}
    count = num(dlq.get("dead_letters"))
    tail = dlq.get("tail") or {}
    rows += [
        (f"`dlq stats` over {count} dead letters (library / CLI incl. start-up)",
         f"{num(dlq.get('stats_s'), 's', 2)} / {num(dlq.get('cli_stats_s'), 's', 2)}"),
        (f"`dlq tail -n 20` over {count} dead letters (library p99 / CLI incl. start-up)",
         f"{num(tail.get('p99_ms'), 'ms', 1)} / {num(dlq.get('cli_tail_s'), 's', 2)}"),
    ]  # fmt: skip
    return rows


def _rss(peak: Any, anon: Any) -> str:
    return f"{num(peak, '', 0)} ({num(anon, '', 0)})"


def _memory(raw: Results) -> list[tuple[str, str]]:
    rows = []
    for key, label in BACKENDS:
        mem = dig(raw, key, "memory") or {}
        peaks, anon = mem.get("rss_peak_mb") or {}, mem.get("rss_anon_peak_mb") or {}
        text = " / ".join(_rss(peaks.get(s), anon.get(s)) for s in SERVICES)
        label_ = f"Peak RSS (anonymous) validator / persister / coach, sustained, {label}"
        rows.append((label_, f"{text} MB"))
    backlog = dig(raw, "backlog", "services") or {}
    peaks_ = " / ".join(
        _rss(dig(backlog, s, "peak_mb"), dig(backlog, s, "peak_anon_mb")) for s in SERVICES
    )
    drift = " / ".join(num(dig(backlog, s, "growth_anon_mb"), "", 1) for s in SERVICES)
    size = num(dig(raw, "backlog", "backlog"))
    rows += [
        (f"Peak RSS (anonymous) under a {size}-entry backlog", f"{peaks_} MB"),
        ("Anonymous RSS drift over the second half of that window", f"{drift} MB"),
    ]
    return rows


CPU_COLUMNS = ("validator", "persister", "coach", "producer", "redis")


def cpu_table(raw: Results) -> list[str]:
    """CPU microseconds per event by process, for each flat-out phase."""
    lines = [
        "| CPU µs per event | " + " | ".join(CPU_COLUMNS) + " | total |",
        "|---|" + "---:|" * (len(CPU_COLUMNS) + 1),
    ]
    phases = (("sqlite", "sustained", "SQLite"), ("postgres", "sustained", "PostgreSQL"),
              ("sqlite", "dead_letter", "50% invalid, SQLite"))  # fmt: skip
    for backend, phase, label in phases:
        cpu = dig(raw, backend, phase, "cpu_us_per_event")
        if not cpu:
            continue
        cells = [num(cpu.get(c), "", 1) for c in CPU_COLUMNS]
        total = sum(float(v) for v in cpu.values())
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {total:.0f} |")
    return lines if len(lines) > 2 else []


BASELINE_CPU = ("validate", "persist", "producer", "redis")


def baseline_table(raw: Results, head: Results) -> list[str]:
    """The lean baseline on each backend next to runbus's figure of the same run."""
    lines = [
        "| Lean baseline (validate → persist, same producer) | baseline ev/s | runbus ev/s "
        "| runbus / baseline | CPU µs per event " + " / ".join(BASELINE_CPU) + " | total |",
        "|---|---:|---:|---:|---|---:|",
    ]
    for key, label in BACKENDS:
        sus = dig(raw, "baseline", key, "sustained")
        if not sus:
            continue
        cpu = sus.get("cpu_us_per_event") or {}
        cells = " / ".join(num(cpu.get(c), "", 1) for c in BASELINE_CPU)
        total = sum(float(v) for v in cpu.values())
        lines.append(
            f"| {label} | {num(sus.get('eps'))} | {num(dig(raw, key, 'sustained', 'eps'))} "
            f"| {num(head.get(f'vs_baseline_{key}'), '', 2)} | {cells} | {total:.0f} |"
        )
    if len(lines) == 2:
        return []
    client = dig(raw, "baseline", "client") or "redis-py"
    return [*lines, "", f"Baseline: one process per stage, {client}, batches of 1000."]


def _machine(head: Results) -> str:
    m = head.get("machine") or {}
    load = ", ".join(str(x) for x in m.get("load_avg_at_start") or [])
    return (
        f"Machine: {m.get('cpu')}, {m.get('cores')} cores, {m.get('ram_gb')} GB RAM; "
        f"Python {m.get('python')}, Redis {m.get('redis')}, PostgreSQL {m.get('postgres')}; "
        f"load average at start {load}."
    )


def sittings(head: Results) -> str:
    """Which parts come from earlier runs (a report after ``--only`` mixes sittings)."""
    when: dict[str, str] = head.get("parts_measured_at") or {}
    older = {part: at for part, at in when.items() if at != head.get("started_at")}
    if not older:
        return ""
    earlier = sorted(set(when.values()) - {head.get("started_at")})
    return f" Parts from earlier runs ({', '.join(earlier)}): {', '.join(sorted(older))}."


def render(raw: Results, head: Results, reference: Results | None = None) -> str:
    """The whole Markdown report."""
    kind = "quick run (`make bench-quick`)" if head.get("quick") else "full run (`make bench`)"
    lines = [
        f"# runbus benchmark — {kind}, {head.get('started_at')}",
        "",
        _machine(head)
        + f" Commit {dig(head, 'machine', 'commit')}, took {head.get('duration_s')} s."
        + sittings(head),
        "",
        "| Measurement | Figure |",
        "|---|---|",
    ]
    for label, value in _limits(raw) + _pipeline(raw, head) + _growth(raw) + _memory(raw):
        lines.append(f"| {label} | {value} |")
    for table in (
        baseline_table(raw, head),
        cpu_table(raw),
        cpu_report.ab_table(raw, head, reference),
        ceiling_report.ceiling_table(raw, head),
        ceiling_report.variants_table(raw),
        scale_report.cluster_table(raw),
        scale_report.capacity_table(head),
        dashboard_report.render_table(raw),
        dashboard_report.live_table(raw),
        api_reads_report.table(raw),
    ):
        if table:
            lines += ["", *table]
    lines += ["", "| Target | Measured | Status |", "|---|---|---|"]
    for row in head.get("targets", []):
        key = row["key"]
        digits = 3 if "ratio" in key or key.startswith("vs_") else 0 if key.endswith("eps") else 1
        lines.append(f"| {row['target']} | {num(row['measured'], '', digits)} | {row['status']} |")
    if head.get("errors"):
        lines += ["", "Errors:", *(f"- {k}: {v}" for k, v in head["errors"].items())]
    return "\n".join(lines) + "\n"
