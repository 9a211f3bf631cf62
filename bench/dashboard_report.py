"""The dashboard part in the report: headline keys and its two Markdown tables."""

from __future__ import annotations

from typing import Any

from bench.report import Results, dig
from bench.stats import ratio

PAGE_LABELS = (
    ("overview", "Overview"),
    ("project", "Project"),
    ("run", "Run (1000 events)"),
    ("dead_letters", "Dead letters"),
    ("dead_letter", "One dead letter"),
    ("search", "Search for a run id"),
)


def _worst_page(raw: Results, *path: str) -> float | None:
    found = [dig(raw, "dashboard", "render", "pages", name, *path) for name, _ in PAGE_LABELS]
    known = [float(v) for v in found if v is not None]
    return max(known) if known else None


def headline(raw: Results) -> Results:
    """The dashboard's figures among the headline keys (None where it did not run)."""
    live = dig(raw, "dashboard", "live") or {}
    n = live.get("dashboards")
    commands = live.get("api_commands_per_s") or {}
    return {
        "ui_server_p95_ms_worst_page": _worst_page(raw, "server", "p95_ms"),
        "ui_browser_fcp_ms_worst_page": _worst_page(raw, "browser", "fcp_ms"),
        "ui_e2e_eps_no_dashboard": dig(live, "none", "eps"),
        "ui_e2e_eps_dashboards": dig(live, "live", "eps"),
        "ui_e2e_ratio": live.get("eps_ratio"),
        "ui_dashboards_mode": live.get("mode"),
        "ui_api_commands_per_s_1": commands.get("1"),
        "ui_api_commands_per_s_n": commands.get(str(n)) if n is not None else None,
        "ui_api_commands_ratio_n_vs_1": ratio(commands.get(str(n)), commands.get("1")),
    }


def _num(value: Any, digits: int = 1) -> str:
    return "—" if value is None else f"{float(value):,.{digits}f}"


def _ms(value: Any) -> str:
    return _num(value, 1)


def page_row(label: str, doc: Results) -> str:
    """One page's row: server first / p50 / p95, browser FCP / DOMContentLoaded, HTML size."""
    server = doc.get("server") or {}
    status = server.get("status")
    if status != "ok":
        what = {"absent": "absent (404)", None: "not measured"}.get(status)
        what = what or f"error {server.get('code')}"
        return f"| {label} `{doc.get('path')}` | {what} | — | — |"
    browser = doc.get("browser") or {}
    times = " / ".join(_ms(server.get(k)) for k in ("first_ms", "p50_ms", "p95_ms"))
    paint = " / ".join(_ms(browser.get(k)) for k in ("fcp_ms", "dom_content_loaded_ms"))
    size = f"{float(server.get('bytes') or 0) / 1024:,.1f} kB"
    moved = f" → `{server['redirected_to']}`" if server.get("redirected_to") else ""
    return f"| {label} `{doc.get('path')}`{moved} | {times} ms | {paint} ms | {size} |"


def render_table(raw: Results) -> list[str]:
    """Time to first render of each page."""
    render = dig(raw, "dashboard", "render")
    if not render:
        return []
    rows, dead = f"{render['history_rows']:,}", f"{render['dead_letters']:,}"
    server = dig(render, "pages", "overview", "server", "n")
    loads = dig(render, "pages", "overview", "browser", "loads")
    lines = [
        f"| Dashboard page ({rows} history rows on PostgreSQL, {dead} dead letters) "
        f"| server first / p50 / p95 (n={server}) | Chromium FCP / DOMContentLoaded "
        f"(median of {loads} first visits) | HTML |",
        "|---|---:|---:|---:|",
    ]
    for name, label in PAGE_LABELS:
        lines.append(page_row(label, dig(render, "pages", name) or {"path": "?"}))
    return lines


def _cpu(doc: Any, name: str) -> str:
    value = dig(doc, "cpu_pct", name)
    return "—" if value is None else f"{float(value):.1f} %"


def _eps(doc: Any) -> str:
    value = dig(doc, "eps")
    return "—" if value is None else f"{float(value):,.0f} ev/s"


def _what_is_open(live: Results) -> str:
    if live.get("mode") == "stand-in":
        return "stand-in: no page has a live part yet, each dashboard polls the overview every 2 s"
    streams = dig(live, "viewers", "streams") or []
    sse = sum(1 for s in streams if s.startswith("sse "))
    pages = ", ".join(f"`{p}`" for p in dig(live, "viewers", "pages") or [])
    events, kb = dig(live, "viewers", "sse_events"), (dig(live, "viewers", "sse_bytes") or 0) / 1024
    polls = dig(live, "viewers", "polls")
    return (
        f"each dashboard has {pages} open: {sse} SSE streams and {len(streams) - sse} polls, "
        f"as the pages' HTML declares them; during the phase they received {events} events "
        f"({kb:,.0f} kB) and made {polls} polls"
    )


def _sustained(live: Results) -> str:
    none, again, with_n = live.get("none"), live.get("none_again"), live.get("live")
    noise, share = live.get("noise"), live.get("eps_ratio")
    before = f"{_eps(none)} / {_eps(again)}" + (f" (noise {noise:.0%})" if noise else "")
    after = _eps(with_n) + (f" ({share:.0%} of their mean)" if share is not None else "")
    return f"| Sustained (history and coach cache) | {before} | {after} |"


def live_table(raw: Results) -> list[str]:
    """The pipeline with N live dashboards versus none, and the API's Redis commands."""
    live = dig(raw, "dashboard", "live")
    if not live:
        return []
    n, none, with_n = live.get("dashboards"), live.get("none"), live.get("live")
    commands = live.get("api_commands_per_s") or {}
    idle = " / ".join(_ms(commands.get(k)) for k in ("0", "1", str(n)))
    per_event = [_num(dig(doc, "commands_per_event"), 2) for doc in (none, with_n)]
    return [
        f"| Pipeline end to end, SQLite | no dashboard (before / after) | {n} live dashboards |",
        "|---|---:|---:|",
        _sustained(live),
        f"| Redis commands per event, every client | {per_event[0]} | {per_event[1]} |",
        f"| CPU of the API / of the dashboards' process | {_cpu(none, 'api')} / — "
        f"| {_cpu(with_n, 'api')} / {_cpu(with_n, 'viewers')} |",
        "",
        f"The API's Redis commands/s, alone on the server (services stopped), with 0 / 1 / {n} "
        f"dashboards open: {idle} "
        f"({_what_is_open(live)}; httpx clients in one separate process, not {n} Chromium tabs, "
        "which on this machine would measure the browsers' CPU instead of runbus's load).",
    ]
