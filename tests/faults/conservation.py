"""The conservation law, checked after a fault, and the per-fault report.

Every event offered must end in exactly one place: the history (one row, by event id) or the
dead-letter stream (once per entry that carried it, by source stream and id), with nothing
pending in any group and the coach cache equal to a rebuild from the history. `account` reads
the outcome from the real stores (history through the store's own reads, dead letters and
envelopes with XRANGE) and counts, per event, what happened to it; it works on trimmed streams
because it follows event ids, not entry ids.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import orjson
import redis

from services.coach.logic import canonical
from services.history import store_for_url
from shared.models import COACH_STAGES, CoachDocument
from shared.names import Names
from shared.settings import REPO_ROOT
from shared.wire import parse_dead_letter
from tests.faults.load import Offer, event_id_of
from tests.faults.system import RUNBUS, System

REPORT = REPO_ROOT / "var" / "faults-report.jsonl"


@dataclass(frozen=True, slots=True)
class Letter:
    """What the checker needs of one dead letter."""

    stage: str
    source_stream: str
    source_id: str
    errors: tuple[str, ...]
    event_id: str | None
    delivery_count: int


@dataclass
class Snapshot:
    """The system's outcome, read after quiescence."""

    history: Counter[str]
    letters: list[Letter]
    envelopes: list[tuple[str, str]]  # (source id, event id) of what is left on the valid stream
    pending: dict[str, int]


def snapshot(system: System, database_url: str) -> Snapshot:
    """Read the history, the dead letters, the valid stream and the pending counts."""
    return Snapshot(
        history=asyncio.run(history_counts(database_url)),
        letters=[_letter(f) for f in xrange_all(system.client, system.names.dead)],
        envelopes=[_envelope(f) for f in xrange_all(system.client, system.names.valid)],
        pending=system.pending(),
    )


async def history_counts(database_url: str) -> Counter[str]:
    """Rows per event id, through the history store's own reads."""
    store = store_for_url(database_url)
    await store.open()
    try:
        return Counter([row.event_id async for row in store.iter_events()])
    finally:
        await store.close()


def xrange_all(client: redis.Redis, stream: str) -> list[dict[bytes, bytes]]:
    """The fields of every entry of a stream, oldest first (read in pages)."""
    out: list[dict[bytes, bytes]] = []
    start = "-"
    while True:
        rows: list[tuple[bytes, dict[bytes, bytes]]] = cast(
            Any, client.xrange(stream, min=start, count=5000)
        )
        out += [fields for _, fields in rows]
        if len(rows) < 5000:
            return out
        start = "(" + rows[-1][0].decode()


def _letter(fields: dict[bytes, bytes]) -> Letter:
    dl = parse_dead_letter(fields)
    return Letter(
        dl.stage, dl.source_stream, dl.source_id, tuple(dl.errors), event_id_of(dl.original),
        dl.delivery_count,
    )  # fmt: skip


def _envelope(fields: dict[bytes, bytes]) -> tuple[str, str]:
    doc = orjson.loads(fields[b"__data__"])
    return str(doc["source_id"]), str(doc["event_id"])


@dataclass
class Figures:
    """One fault's figures: the report row."""

    fault: str
    variant: str
    offered: int = 0
    stored: int = 0
    dead_lettered: int = 0
    duplicates: int = 0
    lost: int = 0
    misrouted: int = 0
    resent: int = 0
    pending: int = 0
    coach_equal: bool = False
    recover_s: float = 0.0
    duration_s: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def problem(self, text: str) -> None:
        """Remember an example of what went wrong (the first few are kept)."""
        if len(self.problems) < 20:
            self.problems.append(text)

    @property
    def holds(self) -> bool:
        """The conservation law holds."""
        return (
            self.lost == 0 and self.duplicates == 0 and self.misrouted == 0 and self.pending == 0
            and self.coach_equal and self.offered > 0
        )  # fmt: skip


Expected = dict[str, tuple[str, str]]


def account(
    offered: dict[str, Offer], snap: Snapshot, figures: Figures, dead: Expected | None = None
) -> Figures:
    """Count what happened to every offered event; `dead` maps event id -> (stage, code)."""
    dead = dead or {}
    figures.offered = len(offered)
    figures.pending = sum(snap.pending.values())
    by_event: dict[str, list[Letter]] = defaultdict(list)
    for letter in snap.letters:
        by_event[letter.event_id or "?"].append(letter)
    _count_duplicate_entries(snap, figures)
    for event_id, offer in offered.items():
        _account_event(event_id, offer, snap.history[event_id], by_event.get(event_id, []),
                       dead.get(event_id), figures)  # fmt: skip
    strangers = (set(snap.history) | set(by_event)) - set(offered)
    for event_id in sorted(strangers)[:5]:
        figures.problem(f"{event_id}: stored or dead-lettered but never offered")
    figures.misrouted += len(strangers)
    return figures


def _count_duplicate_entries(snap: Snapshot, figures: Figures) -> None:
    """The same source entry dead-lettered twice, or forwarded twice to the valid stream."""
    letters = Counter((lt.source_stream, lt.source_id) for lt in snap.letters)
    forwarded = Counter(source for source, _ in snap.envelopes)
    for key, n in [*letters.items(), *forwarded.items()]:
        if n > 1:
            figures.duplicates += n - 1
            figures.problem(f"entry {key} has {n} outcomes")
    copies: dict[str, set[str]] = defaultdict(set)
    for source, event_id in snap.envelopes:
        copies[event_id].add(source)
    for lt in snap.letters:
        if lt.event_id and not lt.source_stream.endswith(":valid"):
            copies[lt.event_id].add(lt.source_id)
    figures.resent = sum(len(sources) - 1 for sources in copies.values())


def _account_event(
    event_id: str,
    offer: Offer,
    rows: int,
    letters: list[Letter],
    expected_dead: tuple[str, str] | None,
    figures: Figures,
) -> None:
    if rows == 0 and not letters:
        figures.lost += 1
        figures.problem(f"{event_id}: lost (neither stored nor dead-lettered)")
        return
    if rows:
        figures.stored += 1
    else:
        figures.dead_lettered += 1
    if rows > 1 or (rows and letters):
        figures.duplicates += rows - 1 + (1 if rows and letters else 0)
        figures.problem(f"{event_id}: {rows} rows and {len(letters)} dead letters")
        return
    if not _as_expected(offer, rows, letters, expected_dead):
        figures.misrouted += 1
        what = [(lt.stage, lt.errors) for lt in letters]
        figures.problem(f"{event_id} ({offer.kind}): rows={rows} letters={what}")


def _as_expected(
    offer: Offer, rows: int, letters: list[Letter], expected_dead: tuple[str, str] | None
) -> bool:
    if expected_dead is not None:
        stage, code = expected_dead
        return rows == 0 and all(lt.stage == stage and code in lt.errors for lt in letters)
    if offer.kind == "valid":
        return rows == 1
    return rows == 0 and all(lt.stage == "validator" for lt in letters)


# --- the coach cache against a rebuild ----------------------------------------------------


def coach_diff(system: System, database_url: str, rebuild_namespace: str) -> list[str]:
    """Rebuild the coach cache from the history into another namespace and compare.

    Runs the real ``runbus coach rebuild`` and compares, per project, the state's facts and each
    stage's suggestions. Returns the differences (empty when equal).
    """
    env = system.env | {"RUNBUS_NAMESPACE": rebuild_namespace, "RUNBUS_DATABASE_URL": database_url}
    done = subprocess.run(
        [str(RUNBUS), "coach", "rebuild", "--json"], env=env, capture_output=True, timeout=300,
        check=False,
    )  # fmt: skip
    if done.returncode != 0:
        return [f"rebuild failed: {done.stdout!r} {done.stderr[-2000:]!r}"]
    live, rebuilt = system.names, Names(rebuild_namespace)
    projects = _projects(system.client, live) | _projects(system.client, rebuilt)
    diffs: list[str] = []
    if not projects:
        diffs.append("the coach cached nothing at all")
    for project in sorted(projects):
        if _state(system.client, live, project) != _state(system.client, rebuilt, project):
            diffs.append(f"project {project}: coach state differs from the rebuild")
        for stage in COACH_STAGES:
            mine = _suggestions(system.client, live, project, stage)
            theirs = _suggestions(system.client, rebuilt, project, stage)
            if mine != theirs:
                diffs.append(f"project {project} {stage}: suggestions differ from the rebuild")
    return diffs


def _projects(client: redis.Redis, names: Names) -> set[int]:
    return {int(p) for p in client.smembers(names.coach_projects)}


def _state(client: redis.Redis, names: Names, project: int) -> dict[bytes, bytes]:
    state: dict[bytes, bytes] = cast(Any, client.hgetall(names.coach_state(project)))
    return state


def _suggestions(client: redis.Redis, names: Names, project: int, stage: str) -> bytes | None:
    raw = client.get(names.coach_key(project, stage))
    if raw is None:
        return None
    return canonical(CoachDocument.model_validate_json(raw).suggestions)


# --- report -------------------------------------------------------------------------------

_COLUMNS = (
    ("fault", 28), ("variant", 7), ("offered", 8), ("stored", 8), ("dead", 6), ("dup", 4),
    ("lost", 4), ("resent", 6), ("recover_s", 9), ("coach", 5),
)  # fmt: skip


def table(figures: Figures) -> str:
    """The figures as a small text table (what the test prints)."""
    values = (
        figures.fault, figures.variant, figures.offered, figures.stored, figures.dead_lettered,
        figures.duplicates, figures.lost, figures.resent, f"{figures.recover_s:.2f}",
        "=" if figures.coach_equal else "DIFF",
    )  # fmt: skip
    head = " ".join(name.rjust(width) for name, width in _COLUMNS)
    row = " ".join(str(v).rjust(width) for v, (_, width) in zip(values, _COLUMNS, strict=True))
    details = orjson.dumps(figures.details, option=orjson.OPT_SORT_KEYS).decode()
    return f"{head}\n{row}\n  details: {details}" + "".join(f"\n  ! {p}" for p in figures.problems)


def report(figures: Figures, path: Path = REPORT) -> None:
    """Print the table and append the figures as one JSON line to var/faults-report.jsonl."""
    print("\n" + table(figures))
    path.parent.mkdir(parents=True, exist_ok=True)
    line = asdict(figures)
    del line["started"]
    line |= {"at": datetime.now(UTC).isoformat(), "holds": figures.holds}
    with path.open("ab") as out:
        out.write(orjson.dumps(line, option=orjson.OPT_SORT_KEYS) + b"\n")


# --- the end of every fault test ----------------------------------------------------------


def conclude(
    system: System,
    offered: dict[str, Offer],
    figures: Figures,
    database_url: str,
    *,
    dead: Expected | None = None,
    timeout: float = 120.0,
) -> Figures:
    """Wait for quiescence, drain the services, check the law, report; the figures.

    Call it once the producers stopped. The services are stopped with SIGTERM (they drain and
    must exit 0) before the outcome is read, so nothing moves while it is counted.
    """
    figures.details["quiesce_s"] = round(system.wait_quiescent(timeout), 2)
    exits = {name: code for name, code in system.stop_all().items() if code != 0}
    if exits:
        figures.problem(f"services that did not exit 0 on SIGTERM: {exits}")
    account(offered, snapshot(system, database_url), figures, dead)
    diffs = coach_diff(system, database_url, f"{system.names.namespace}rb")
    figures.coach_equal = not diffs
    for diff in diffs[:5]:
        figures.problem(diff)
    figures.duration_s = round(time.monotonic() - figures.started, 1)
    report(figures)
    assert figures.holds and not exits, (
        f"conservation law broken\n{table(figures)}\n{system.tails()}"
    )
    return figures
