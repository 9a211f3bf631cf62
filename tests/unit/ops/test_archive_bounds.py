"""`archive_bounds`: an XRANGE age window as the archive's (after, until], the same ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.ops.archived import archive_bounds
from services.ops.logic import window
from shared.archive import FIRST_ID, LAST_ID
from shared.wire import entry_id_key

NOW = datetime(2026, 12, 2, tzinfo=UTC)


def inside(bounds: tuple[tuple[int, int], tuple[int, int]], entry_id: str) -> bool:
    after, until = bounds
    return after < entry_id_key(entry_id) <= until


def test_the_open_window_is_the_whole_archive() -> None:
    assert archive_bounds("-", "+") == (FIRST_ID, LAST_ID)
    assert inside(archive_bounds("-", "+"), "0-0")


def test_an_inclusive_low_and_an_exclusive_high_keep_the_same_ids_as_xrange() -> None:
    bounds = window(NOW, timedelta(hours=2), timedelta(hours=1))
    assert bounds is not None
    low, high = bounds
    start, end = int(low.split("-")[0]), int(high.removeprefix("(").split("-")[0])
    found = archive_bounds(low, high)
    assert inside(found, f"{start}-0") and not inside(found, f"{start - 1}-99")
    assert inside(found, f"{end - 1}-18446744") and not inside(found, f"{end}-0")


def test_an_exclusive_high_with_a_sequence_stops_just_below_it() -> None:
    after, until = archive_bounds("5-3", "(9-4")
    assert after == (5, 2) and until == (9, 3)
