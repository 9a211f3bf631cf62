"""Pure parts of the `runbus dlq` command line."""

from __future__ import annotations

import io

import pytest

from services.cli.dlq import split_ids


def test_ids_may_be_repeated_comma_or_space_separated_and_are_deduplicated() -> None:
    assert split_ids(["1-0,2-0", "3-0 4-0", "1-0", " "]) == ["1-0", "2-0", "3-0", "4-0"]


def test_a_dash_reads_ids_from_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("5-0\n6-0\n\n"))
    assert split_ids(["-", "7-0"]) == ["5-0", "6-0", "7-0"]
