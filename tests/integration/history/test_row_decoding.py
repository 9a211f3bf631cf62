"""Rows read back decode exactly as they did before the read path was made cheap for the
garbage collector: every field of every row has the same value and type (times with the same
zone) as the row-by-row decoding the stores used to do, on both backends and both dialects:
nulls, hostile unicode, NUL, integers at the 64-bit edges, nested and non-object JSON, and
rows written by hand that the persister would never write.
"""

from __future__ import annotations

import gc
import sqlite3
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest

from services.history import HistoryRow, HistoryStore, sqlite_v1, store_for_url
from services.history.base import Page
from services.history.postgres import ESCAPED, _init_connection, py_text
from services.history.records import ROW_COLUMNS, loads_json, records_of
from tests.integration.history.conftest import raw_sql
from tests.integration.history.factory import at, brewslm, pulse
from tests.unit.badinput.corpus import NASTY

pytestmark = pytest.mark.integration

RUN = "run-decoding"
NUL_RUN = "run\x00with a NUL"
HAND = "run-by-hand"
_JSON = ("payload", "details")
_TIMES = ("ts", "created_at", "accepted_at")
# Hand-written rows: JSON the persister never writes (non-objects, integers past 64 bits,
# JSON null), a NULL project, and SQLite's own millisecond created_at.
_HAND_ROWS: list[tuple[str, str, int | None, str | None, str | None, str | None]] = [
    # event_id, dialect, project_id, payload, details, parent_run_id
    ("h-list", "brewslm", 1, "[1, 2, {\"a\": null}]", None, None),
    ("h-big", "brewslm", 2**63 - 1, '{"big": 123456789012345678901234567890, "f": 1.5e300}',
     None, "parent\u00e9"),
    ("h-scalar", "pulse", None, None, "123456789012345678901234567890", None),
    ("h-null", "pulse", 0, None, "null", None),
    ("h-string", "brewslm", 3, '"text"', None, None),
]  # fmt: skip


def _events() -> list[Any]:
    payload = {
        "nested": {"list": [1, {"deep": [None, True, False]}], "empty": {}, "none": None},
        "u64": 2**64 - 1, "i64": -(2**63), "float": 0.1, "tiny": 5e-324, "huge": 1e308,
        "neg_zero": -0.0, "\u00e9t\u00e9 \U0001f600": "\u202eevil\u202c", "nul\x00key": "a\x00b",
    }  # fmt: skip
    envelopes = [
        brewslm(RUN, at(0), event_id="b-full", payload=payload, reason_code="training_oom",
                severity="error", actor="user-\u00e9", parent_run_id="parent-1"),
        brewslm(RUN, at(1), event_id="b-bare"),  # no payload, actor, parent, reason
        brewslm(RUN, at(1), event_id="b-same-ts", payload={}),  # same ts: id breaks the tie
        pulse(RUN, at(2), event_id="p-bare"),  # no details
        pulse(RUN, at(3), event_id="p-details", details=payload, event_type="run.failed",
              severity="error"),
        brewslm(RUN, at(4), event_id="b-mark", summary="\ufdd0 starts with the escape mark",
                actor="\ufdd0\ufdd0\ufdd1"),
        pulse(NUL_RUN, at(5), event_id="p-nul-run", parent_run_id=RUN + "\x00"),
        brewslm(NUL_RUN, at(6), event_id="b-nul-run", parent_run_id=NUL_RUN),
    ]  # fmt: skip
    for i, text in enumerate(NASTY):
        actor = {"actor": text} if 0 < len(text) <= 256 else {}  # an id's bounds
        envelopes.append(brewslm(RUN, at(10 + i), event_id=f"b-nasty-{i}", summary=text,
                                 payload={text: [text]}, **actor))  # fmt: skip
        envelopes.append(pulse(RUN, at(10 + i, at(100)), event_id=f"p-nasty-{i}", message=text,
                               details={text: text}))  # fmt: skip
    return envelopes


async def _write_by_hand(url: str) -> None:
    sqlite = url.startswith("sqlite:///")
    columns = (
        "event_id, dialect, project_id, run_id, parent_run_id, stage, severity, payload, "
        "event_type, details, ts, accepted_at, taxonomy_version, source_id"
    )
    if sqlite:  # created_at: SQLite's own default (milliseconds)
        values = f"{', '.join('?' * 11)}, ?11, 'tx-hand', '9-0'"
    else:
        values = "$1, $2, $3, $4, $5, $6, $7, $8::json, $9, $10::json, $11, $11, 'tx-hand', '9-0'"
    sql = f"INSERT INTO history ({columns}) VALUES ({values})"
    for n, (event_id, dialect, project, payload, details, parent) in enumerate(_HAND_ROWS):
        brew = dialect == "brewslm"
        when = at(500 + n)
        await raw_sql(
            url, sql, event_id, dialect, project, HAND, parent, "training" if brew else None,
            "info", payload, None if brew else "run.started", details,
            when.isoformat(timespec="microseconds") if sqlite else when,
        )  # fmt: skip


async def _legacy_rows(url: str) -> list[list[Any]]:
    """Every row, decoded as the stores decoded them row by row before (field values in
    `ROW_COLUMNS` order)."""
    order = " ORDER BY ts, id"
    if url.startswith("sqlite:///"):
        raw = await raw_sql(url, f"SELECT {', '.join(ROW_COLUMNS)} FROM history{order}")
        decoded = []
        for row in raw:
            values = list(row)
            for name in _TIMES:
                i = ROW_COLUMNS.index(name)
                values[i] = datetime.fromisoformat(values[i])
            for name in _JSON:
                i = ROW_COLUMNS.index(name)
                if values[i] is not None:
                    values[i] = loads_json(values[i])
            decoded.append(values)
        return decoded
    conn = await asyncpg.connect(url)
    try:
        await _init_connection(conn)
        records = await conn.fetch(f"SELECT {', '.join(ROW_COLUMNS)} FROM history{order}")
    finally:
        await conn.close()
    decoded = []
    for record in records:
        values = list(record)
        for name in ESCAPED:
            i = ROW_COLUMNS.index(name)
            text = values[i]
            if text and text[0] == "\ufdd0":
                values[i] = py_text(text)
        decoded.append(values)
    return decoded


async def _read_all(store: HistoryStore) -> list[HistoryRow]:
    rows = []
    for run in (RUN, NUL_RUN, HAND):
        page = await store.run_timeline(run, limit=5000)
        assert page.next_cursor is None
        rows += page.rows
    return sorted(rows, key=lambda r: (r.ts, r.id))


def _same(new: Any, old: Any) -> bool:
    """Equal, of the same type, and for times in the same zone; recursively for JSON."""
    if type(new) is not type(old):
        return False
    if isinstance(old, dict):
        return list(new) == list(old) and all(_same(new[k], old[k]) for k in old)
    if isinstance(old, list):
        return len(new) == len(old) and all(map(_same, new, old))
    if isinstance(old, datetime):
        return bool(new == old and new.tzinfo == old.tzinfo)
    if isinstance(old, float):
        return repr(new) == repr(old)  # -0.0 and 0.0 are equal, but not the same
    return bool(new == old)


def _write_0001(url: str, envelopes: list[Any]) -> None:
    """A SQLite file as the 0001 store left it: migration 0001 alone, then its inserts."""
    conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        sqlite_v1.create(conn)
        params = sqlite_v1.params(records_of(envelopes))
        conn.executemany(sqlite_v1.INSERT_SQL, params)
    finally:
        conn.close()


@pytest.fixture
async def pg_store(pg_url: str) -> AsyncIterator[HistoryStore]:
    """A migrated PostgreSQL store (SQLite's reads are held against its 0001 rows below)."""
    history = store_for_url(pg_url)
    await history.open()
    await history.migrate()
    yield history
    await history.close()


async def test_rows_decode_as_they_did_row_by_row(pg_store: HistoryStore, pg_url: str) -> None:
    # Given rows of both dialects written by the persister's path, and rows written by hand
    envelopes = _events()
    assert await pg_store.insert_batch(envelopes) == len(envelopes)
    await _write_by_hand(pg_url)
    # When the store reads them, and the former row-by-row decoding reads the same rows
    rows = await _read_all(pg_store)
    legacy = await _legacy_rows(pg_url)
    # Then every field is the same value of the same type
    _check_same(rows, legacy, len(envelopes))


async def test_a_0001_sqlite_history_upgrades_in_place_and_reads_back_identically(
    tmp_path: Path,
) -> None:
    # Given a SQLite history written by the 0001 store (both dialects, NUL, hostile text) and
    # rows written by hand, read as the 0001 store read them
    url = f"sqlite:///{tmp_path / 'history.db'}"
    envelopes = _events()
    _write_0001(url, envelopes)
    await _write_by_hand(url)
    legacy = await _legacy_rows(url)
    store = store_for_url(url)
    await store.open()
    try:
        # When the store migrates it (0002, then 0003: the dead-letter archive) and reads it
        assert await store.migrate() == [2, 3]
        rows = await _read_all(store)
        # Then every row reads back identically, its id (and so every cursor) kept
        _check_same(rows, legacy, len(envelopes))
        # and the API's bytes, encoded from the fetched tuples, are those of the rows
        await _served_as_rows(store)
        # and new inserts work beside the old rows, and read back as the old ones do
        again = [e.model_copy(update={"event_id": "new-" + e.event_id}) for e in envelopes]
        assert await store.insert_batch(again) == len(again)
        assert await store.insert_batch(again) == 0  # idempotent across the layouts
        both = await _read_all(store)
        new = {r.event_id.removeprefix("new-"): r for r in both if r.event_id.startswith("new-")}
        assert min(r.id for r in new.values()) > max(r.id for r in rows)
        for old in rows[: len(envelopes)]:
            fresh = new[old.event_id]
            for name in ROW_COLUMNS:
                if name not in ("id", "event_id", "created_at"):
                    assert _same(getattr(fresh, name), getattr(old, name)), (old.event_id, name)
    finally:
        await store.close()


async def _served_as_rows(store: HistoryStore) -> None:
    """Every page of every run (two rows a page, and whole) and of the projects answers the
    bytes its rows would (`Page.to_json` straight from the tuples, before `rows` is read)."""
    pages = []
    for run in (RUN, NUL_RUN, HAND):
        pages.append(await store.run_timeline(run, limit=5000))
        cursor: str | None = None
        while True:
            page = await store.run_timeline(run, limit=2, cursor=cursor)
            pages.append(page)
            if (cursor := page.next_cursor) is None:
                break
    for project in (0, 1, 2, 3):
        pages.append(await store.project_timeline(project, limit=2))
    for page in pages:
        encoded = page.to_json()
        assert encoded == Page(page.rows, page.next_cursor).to_json()
    assert sum(len(p) for p in pages[:1]) > 0


def _check_same(rows: list[HistoryRow], legacy: list[list[Any]], inserted: int) -> None:
    assert len(rows) == len(legacy) == inserted + len(_HAND_ROWS)
    for row, old in zip(rows, legacy, strict=True):
        for name, expected in zip(ROW_COLUMNS, old, strict=True):
            assert _same(getattr(row, name), expected), (row.event_id, name)
        # and so is what the API and the CLI print of it
        assert orjson.dumps(row.to_dict()) == orjson.dumps(HistoryRow(*old).to_dict()), row.event_id
    # and the hand-written JSON shows what the backend makes of it (as before)
    by_id = {r.event_id: r for r in rows}
    big = by_id["h-big"].payload
    assert big is not None and big["big"] == 1.2345678901234568e29  # orjson reads it as float
    # and no row is tracked by the cyclic garbage collector
    assert not any(gc.is_tracked(r) for r in rows)
