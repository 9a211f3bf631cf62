"""From envelopes to history records: reshaping, and refusing what is not an event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.history import sqlite_rows
from services.history.base import HistoryRow, StoreRejected
from services.history.migrations import migrations
from services.history.postgres import pg_text, py_text
from services.history.records import (
    COLUMNS,
    Record,
    months_of,
    parse_time,
    record_of,
    records_of,
)
from services.history.sqlite_rows import micros
from shared.models import ValidEnvelope


def envelope(event: dict[str, Any], dialect: str = "brewslm") -> ValidEnvelope:
    return ValidEnvelope(
        event_id="evt-1", dialect=dialect, taxonomy_version="tx", source_id="5-0",  # type: ignore[arg-type]
        accepted_at=datetime(2026, 3, 2, tzinfo=UTC), event=event,
    )  # fmt: skip


BREW = {
    "dialect": "brewslm", "event_id": "evt-1", "project_id": 3, "run_id": "exp-1",
    "parent_run_id": "exp-0", "stage": "training", "severity": "error",
    "reason_code": "training_oom", "actor": "u1", "summary": "boom", "payload": {"gb": 80},
    "ts": "2026-03-01T10:00:00.250000Z",
}  # fmt: skip
PULSE = {
    "dialect": "pulse", "event_id": "evt-1", "run_id": "run-1", "parent_run_id": None,
    "project_id": None, "event_type": "run.failed", "severity": "error", "message": "x",
    "details": None, "created_at": "2026-03-01T10:00:00+02:00",
}  # fmt: skip


def test_a_brewslm_event_fills_its_columns_and_leaves_pulse_ones_empty() -> None:
    rec = record_of(envelope(BREW))
    assert rec.run_id == "exp-1" and rec.parent_run_id == "exp-0" and rec.project_id == 3
    assert rec.stage == "training" and rec.reason_code == "training_oom" and rec.actor == "u1"
    assert orjson.loads(rec.payload or "") == {"gb": 80}
    assert rec.event_type is None and rec.message is None and rec.details is None
    assert rec.ts == datetime(2026, 3, 1, 10, 0, 0, 250000, tzinfo=UTC)
    assert rec.source_id == "5-0" and rec.taxonomy_version == "tx"
    assert Record._fields == COLUMNS


def test_a_pulse_event_fills_its_columns_in_utc() -> None:
    rec = record_of(envelope(PULSE, "pulse"))
    assert rec.event_type == "run.failed" and rec.message == "x" and rec.details is None
    assert rec.stage is None and rec.payload is None and rec.project_id is None
    assert rec.ts == datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("dialect", "change"),
    [
        ("brewslm", {"run_id": None}),
        ("brewslm", {"run_id": 5}),
        ("brewslm", {"ts": "yesterday"}),
        ("brewslm", {"ts": "2150-01-01T00:00:00Z"}),
        ("brewslm", {"project_id": "7"}),
        ("brewslm", {"project_id": True}),
        ("brewslm", {"payload": [1, 2]}),
        ("brewslm", {"stage": None}),
        ("pulse", {"event_type": None}),
        ("pulse", {"created_at": None}),
    ],
)
def test_what_is_not_an_event_is_rejected(dialect: str, change: dict[str, Any]) -> None:
    event = {**(BREW if dialect == "brewslm" else PULSE), **change}
    with pytest.raises(StoreRejected, match="evt-1"):
        record_of(envelope(event, dialect))


def test_times_are_bounded_and_naive_means_utc() -> None:
    assert parse_time("2026-01-01T00:00:00") == datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_time("1969-12-31T23:59:59Z")
    with pytest.raises(ValueError):
        parse_time(17)


def test_months_of_a_batch() -> None:
    a = record_of(envelope(BREW))
    b = record_of(envelope({**BREW, "ts": "2026-04-30T23:59:59Z"}))
    assert months_of([a, b, a]) == {(2026, 3), (2026, 4)}


def test_both_backends_have_the_same_migration_versions() -> None:
    sqlite = [(m.version, m.name) for m in migrations("sqlite")]
    postgres = [(m.version, m.name) for m in migrations("postgres")]
    assert sqlite == postgres and sqlite[0] == (1, "history")


@given(st.text(alphabet=st.sampled_from("ab\x00\ufdd0\ufdd1\\é🧪"), max_size=30) | st.text())
def test_the_postgres_text_escape_is_lossless(text: str) -> None:
    stored = pg_text(text)
    assert stored is not None and "\x00" not in stored
    assert py_text(stored) == text
    if "\x00" not in text and "\ufdd0" not in text:
        assert stored == text  # ordinary text is stored as is


def test_the_escape_leaves_none_alone() -> None:
    assert pg_text(None) is None and py_text(None) is None


def test_a_batch_converts_each_distinct_accept_time_once_and_keeps_every_value() -> None:
    # given a batch whose envelopes share one accept time, written in two offsets, plus another
    paris = timezone(timedelta(hours=1))
    shared = datetime(2026, 3, 2, 1, tzinfo=paris)
    envs = [
        envelope(BREW).model_copy(update={"accepted_at": shared}),
        envelope(BREW).model_copy(update={"accepted_at": shared.astimezone(UTC)}),
        envelope(BREW).model_copy(update={"accepted_at": datetime(2026, 3, 3, tzinfo=paris)}),
    ]
    # when the batch becomes SQLite parameters
    params = sqlite_rows.params(records_of(envs), created=7)
    # then each row's body holds its own accept time in UTC microseconds, and the ts beside it
    bodies = [orjson.loads(p[sqlite_rows.COLUMNS.index("body")]) for p in params]
    at = sqlite_rows.BODY.index("accepted_at")
    assert [sqlite_rows.time_of(b[at]) for b in bodies] == [
        datetime(2026, 3, 2, tzinfo=UTC),
        datetime(2026, 3, 2, tzinfo=UTC),
        datetime(2026, 3, 2, 23, tzinfo=UTC),
    ]
    assert all(p[sqlite_rows.COLUMNS.index("ts")] == micros(parse_time(BREW["ts"])) for p in params)
    assert all(b[sqlite_rows.BODY.index("created_at")] == 7 for b in bodies)


def test_a_record_reads_back_from_its_sqlite_row_field_for_field() -> None:
    # given both dialects' records, one holding NUL and the escape mark in its free text
    nul = {**BREW, "summary": "a\x00b \ufdd0", "actor": "\x00", "payload": {"k\x00": [1, None]}}
    records = [record_of(envelope(nul)), record_of(envelope(PULSE, "pulse"))]
    # when each becomes the row SQLite stores, and that row is read back
    params = sqlite_rows.params(
        records, created=sqlite_rows.micros(datetime(2026, 4, 1, tzinfo=UTC))
    )
    rows = sqlite_rows.rows_of([(n, *p) for n, p in enumerate(params, 1)])
    # then every field is the record's (the JSON objects decoded), the row id and insert time added
    for record, row in zip(records, rows, strict=True):
        for name, value in record._asdict().items():
            if name in ("payload", "details"):
                value = None if value is None else orjson.loads(value)
            assert getattr(row, name) == value, name
        assert row.created_at == datetime(2026, 4, 1, tzinfo=UTC)
    assert rows[0].summary == "a\x00b \ufdd0" and rows[0].payload == {"k\x00": [1, None]}


def test_the_body_holds_every_field_a_column_does_not() -> None:
    stored = set(sqlite_rows.COLUMNS) - {"body"} | set(sqlite_rows.BODY) | {"id"}
    assert stored == set(HistoryRow.__struct_fields__)
    assert not set(sqlite_rows.COLUMNS) & set(sqlite_rows.BODY)


def test_micros_is_utc_whatever_the_offset() -> None:
    paris = timezone(timedelta(hours=1))
    one = sqlite_rows.micros(datetime(2026, 1, 1, 1, tzinfo=paris))
    assert one == sqlite_rows.micros(datetime(2026, 1, 1, tzinfo=UTC)) == 1767225600000000
    assert sqlite_rows.time_of(one) == datetime(2026, 1, 1, tzinfo=UTC)


@given(
    st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(2099, 12, 31, 23, 59, 59, 999999)
    )
)
def test_a_stored_time_reads_back_to_the_microsecond(value: datetime) -> None:
    aware = value.replace(tzinfo=UTC)
    assert sqlite_rows.time_of(sqlite_rows.micros(aware)) == aware
    assert sqlite_rows.time_of(sqlite_rows.micros(aware)).tzinfo is UTC
