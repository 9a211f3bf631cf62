"""The checker itself can fail: lost, duplicated, misrouted events and a stale coach are caught."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import pytest

from services.history import store_for_url
from tests.faults.conftest import MakeSystem
from tests.faults.conservation import Figures, Letter, Snapshot, account, coach_diff, report
from tests.faults.load import EventMix, Offer, event_id_of

MIX = EventMix("t", invalid_every=4)
OFFERED: dict[str, Offer] = {o.event_id: o for o in (MIX.offer(i) for i in range(8))}
VALID = [e for e, o in OFFERED.items() if o.kind == "valid"]
INVALID = [e for e, o in OFFERED.items() if o.kind == "invalid"]


def _letter(event_id: str, source: str, stage: str = "validator", code: str = "x") -> Letter:
    stream = "{t}:events" if stage == "validator" else "{t}:valid"
    return Letter(stage, stream, source, (code,), event_id, 1)


def _perfect() -> Snapshot:
    history = Counter(VALID)
    letters = [_letter(e, f"1-{i}") for i, e in enumerate(INVALID)]
    envelopes = [(f"2-{i}", e) for i, e in enumerate(VALID)]
    return Snapshot(history, letters, envelopes, {"validator": 0})


def _figures(snap: Snapshot, dead: dict[str, tuple[str, str]] | None = None) -> Figures:
    return account(OFFERED, snap, Figures("unit", "short", coach_equal=True), dead)


def test_a_perfect_outcome_holds() -> None:
    figures = _figures(_perfect())
    assert figures.holds, figures.problems
    assert (figures.stored, figures.dead_lettered) == (len(VALID), len(INVALID))


def test_a_missing_row_is_lost() -> None:
    snap = _perfect()
    del snap.history[VALID[0]]
    figures = _figures(snap)
    assert figures.lost == 1 and not figures.holds


def test_a_second_dead_letter_of_one_entry_is_a_duplicate() -> None:
    snap = _perfect()
    snap.letters.append(snap.letters[0])
    assert _figures(snap).duplicates == 1


def test_a_stored_event_also_dead_lettered_is_a_duplicate() -> None:
    snap = _perfect()
    snap.letters.append(_letter(VALID[1], "2-1", stage="coach"))
    assert _figures(snap).duplicates == 1


def test_an_entry_forwarded_twice_is_a_duplicate() -> None:
    snap = _perfect()
    snap.envelopes.append(snap.envelopes[0])
    assert _figures(snap).duplicates == 1


def test_a_valid_event_dead_lettered_or_an_invalid_one_stored_is_misrouted() -> None:
    snap = _perfect()
    del snap.history[VALID[0]]
    snap.letters.append(_letter(VALID[0], "9-9"))
    snap.history[INVALID[0]] = 1
    snap.letters = [lt for lt in snap.letters if lt.event_id != INVALID[0]]
    assert _figures(snap).misrouted == 2


def test_an_expected_dead_letter_must_have_its_stage_and_code() -> None:
    snap = _perfect()
    del snap.history[VALID[0]]
    snap.letters.append(_letter(VALID[0], "2-0", stage="persister", code="persist_rejected"))
    assert _figures(snap, {VALID[0]: ("persister", "persist_rejected")}).holds
    assert _figures(snap, {VALID[0]: ("validator", "persist_rejected")}).misrouted == 1


def test_pending_entries_and_strangers_break_the_law() -> None:
    snap = _perfect()
    snap.pending["persister"] = 3
    snap.history["never-offered"] = 1
    figures = _figures(snap)
    assert figures.pending == 3 and figures.misrouted == 1 and not figures.holds


def test_copies_resent_by_a_producer_are_counted_not_duplicates() -> None:
    snap = _perfect()
    snap.envelopes.append(("2-99", VALID[0]))  # a second entry carrying the same event
    snap.letters.append(_letter(INVALID[0], "1-99"))
    figures = _figures(snap)
    assert figures.resent == 2 and figures.holds


def test_the_event_id_is_read_from_any_bytes() -> None:
    broken = next(o for o in (MIX.offer(i) for i in range(40)) if o.doc is None)
    assert event_id_of(broken.body) == broken.event_id
    assert event_id_of(b"garbage") is None


def test_report_appends_one_json_line(tmp_path: Path) -> None:
    path = tmp_path / "report.jsonl"
    report(_figures(_perfect()), path)
    report(_figures(_perfect()), path)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == 2 and lines[0]["lost"] == 0 and lines[0]["holds"] is True


async def _migrated(url: str) -> None:
    store = store_for_url(url)
    await store.open()
    try:
        await store.migrate()
    finally:
        await store.close()


@pytest.mark.integration
def test_a_coach_cache_the_history_does_not_explain_is_a_difference(
    make_system: MakeSystem, tmp_path: Path
) -> None:
    # given an empty history and a coach state that no event in it produced
    db = f"sqlite:///{tmp_path / 'history.db'}"
    asyncio.run(_migrated(db))
    system = make_system(db)
    system.client.hset(system.names.coach_state(5), "training:ok", b'[1,"e",{}]')
    system.client.sadd(system.names.coach_projects, 5)
    # when it is compared with a rebuild, then the difference is reported
    diffs = coach_diff(system, db, f"{system.names.namespace}rb")
    assert diffs == ["project 5: coach state differs from the rebuild"]
