"""The lean baseline's pure parts: its rows, its validation, its store, and how it is reported.

No servers (SQLite in a temporary directory): the baseline must store what the workload
publishes once and only once, reject what runbus's models reject, and the report must put
runbus's figure over the baseline's, saying "not run" when the part did not run.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

from bench import events
from bench.baseline_stage import is_valid
from bench.baseline_store import SqliteStore, row_of
from bench.markdown import baseline_table
from bench.producer import readers_of
from bench.report import baseline_headline, verdicts

TS = "2026-12-01T17:00:00.123456+00:00"


def test_a_row_holds_the_seven_columns_of_either_dialect() -> None:
    # Given a BrewSLM event and a Pulse event of the workload
    brewslm, pulse = events.body(0, "e-", TS), events.body(9, "e-", TS)
    # Then each row names the event, its run, project, dialect, kind and time, and keeps the body
    assert row_of(brewslm)[:6] == ("e-0000000000", "e-run-0", 0, "brewslm", "ingestion", TS)
    assert row_of(pulse)[:6] == ("e-0000000009", "e-run-0", 9, "pulse", "stage.completed", TS)
    assert row_of(pulse)[6] == pulse.decode()
    assert datetime.fromisoformat(row_of(pulse)[5]).tzinfo is not None


def test_validation_accepts_the_workload_and_rejects_what_the_models_reject() -> None:
    bodies = [events.body(seq, "e-", TS) for seq in range(len(events.TEMPLATES))]
    assert all(is_valid(b) for b in bodies)
    assert not is_valid(b"{}")
    assert not is_valid(b"{not json")
    assert not is_valid(events.body(0, "e-", TS).replace(b'"project_id":0', b'"project_id":"0"'))


def test_the_store_keeps_each_event_once_in_wal_mode(tmp_path: Path) -> None:
    # Given a batch stored, then stored again (a redelivery after a crash before the XACK)
    path = str(tmp_path / "baseline.db")
    store = SqliteStore(path)
    rows = [row_of(events.body(seq, "e-", TS)) for seq in range(50)]
    store.write(rows)
    store.write([*rows[:20], row_of(events.body(50, "e-", TS))])
    store.close()
    # Then every event is there once, and the file is in WAL mode
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*), count(DISTINCT event_id) FROM history").fetchone() == (
        51,
        51,
    )
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    columns = conn.execute("SELECT * FROM history LIMIT 1").description
    assert len(columns) == 7
    conn.close()


def test_the_producer_counts_the_readers_it_is_told_to() -> None:
    assert readers_of("") == ("persister", "coach")
    assert readers_of("persister") == ("persister",)
    assert readers_of(" persister , coach ") == ("persister", "coach")


def _raw(runbus: float, base: float) -> dict[str, object]:
    sustained = {"sustained": {"eps": base, "cpu_us_per_event": {"validate": 10.0, "redis": 5.0}}}
    return {
        "sqlite": {"sustained": {"eps": runbus}},
        "baseline": {"client": "redis-py", "sqlite": sustained},
    }


def test_runbus_is_reported_over_the_baseline_with_the_issues_target() -> None:
    # Given runbus at 9k ev/s and the baseline at 20k on SQLite, PostgreSQL not run
    head = baseline_headline(_raw(9_000.0, 20_000.0))
    assert head == {
        "baseline_sqlite_evs": 20_000.0,
        "vs_baseline_sqlite": 0.45,
        "baseline_postgres_evs": None,
        "vs_baseline_postgres": None,
    }
    # Then the SQLite target is missed, the PostgreSQL one not run; 1.5x would meet it
    status = {v["key"]: v["status"] for v in verdicts(head)}
    assert status["vs_baseline_sqlite"] == "missed"
    assert status["vs_baseline_postgres"] == "not run"
    met = {v["key"]: v["status"] for v in verdicts(baseline_headline(_raw(30_000.0, 20_000.0)))}
    assert met["vs_baseline_sqlite"] == "met"


def test_the_baseline_table_has_a_row_per_measured_backend() -> None:
    raw = _raw(9_000.0, 20_000.0)
    lines = baseline_table(raw, baseline_headline(raw))
    rows = [line for line in lines if line.startswith("| SQLite")]
    assert rows == ["| SQLite | 20,000 | 9,000 | 0.45 | 10.0 / — / — / 5.0 | 15 |"]
    assert not any(line.startswith("| PostgreSQL") for line in lines)
    assert baseline_table({}, {}) == []
