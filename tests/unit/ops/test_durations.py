"""The one duration parser and the compact age format."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.ops.durations import format_age, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("15m", timedelta(minutes=15)),
        ("2h", timedelta(hours=2)),
        ("7d", timedelta(days=7)),
        ("1w", timedelta(weeks=1)),
        ("500ms", timedelta(milliseconds=500)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1d 2h", timedelta(days=1, hours=2)),
        ("1.5h", timedelta(minutes=90)),
        ("0s", timedelta(0)),
        (" 2H ", timedelta(hours=2)),
    ],
)
def test_parses_human_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "30", "abc", "-5m", "5 minutes", "m5", "1h x", "5mm"])
def test_refuses_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (None, "-"),
        (-3.0, "0ms"),
        (0.85, "850ms"),
        (42.9, "42s"),
        (192, "3m12s"),
        (5 * 3600 + 4 * 60 + 59, "5h04m"),
        (2 * 86400 + 3 * 3600, "2d03h"),
    ],
)
def test_formats_ages_compactly(seconds: float | None, expected: str) -> None:
    assert format_age(seconds) == expected
