"""Time arguments of the reads: ISO times and "ago" durations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.history import store_for_url
from services.history.postgres import PostgresHistoryStore, schema_of
from services.history.reads import parse_duration, parse_when
from services.history.sqlite import SqliteHistoryStore, _statements

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("2h", timedelta(hours=2)),
        ("7d", timedelta(days=7)),
        ("90D", timedelta(days=90)),
        ("4w", timedelta(weeks=4)),
        ("1.5h", timedelta(minutes=90)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "7", "d7", "7 days", "-1d", "1y"])
def test_not_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_when_is_an_iso_time_or_a_duration_ago() -> None:
    assert parse_when("2h", NOW) == NOW - timedelta(hours=2)
    assert parse_when("2026-02-01T00:00:00+01:00") == datetime(2026, 1, 31, 23, tzinfo=UTC)
    assert parse_when("2026-02-01") == datetime(2026, 2, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="ISO"):
        parse_when("last tuesday")


def test_the_url_picks_the_backend_and_the_schema() -> None:
    assert isinstance(store_for_url("sqlite:////tmp/x.db"), SqliteHistoryStore)
    pg = store_for_url("postgresql://u@h/db?search_path=runbus")
    assert isinstance(pg, PostgresHistoryStore) and pg.schema == "runbus"
    assert schema_of("postgresql://u@h/db") is None
    assert schema_of("postgresql://u@h/db?search_path=a,public") == "a"
    with pytest.raises(ValueError):
        store_for_url("mysql://h/db")


def test_an_unsupported_url_is_refused_without_its_password() -> None:
    # The message is logged (worker_failed): the password must not be in it
    with pytest.raises(ValueError, match="unsupported") as refused:
        store_for_url("postgresql+asyncpg://app:s3cret@db/history")
    assert "s3cret" not in str(refused.value) and "app:***@db" in str(refused.value)


def test_sqlite_scripts_split_into_statements_keeping_trigger_bodies() -> None:
    script = (
        "CREATE TABLE t (x);\n-- a comment; with a semicolon\n"
        "CREATE TRIGGER g BEFORE DELETE ON t\nBEGIN\n  SELECT RAISE(ABORT, 'no');\nEND;\n"
    )
    statements = _statements(script)
    assert len(statements) == 2 and statements[1].endswith("END;")
