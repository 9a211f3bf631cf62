"""The data steps of SQLite migrations (``-- @step <name>`` lines in a migration's SQL).

A step runs inside its migration's transaction, between the statements before and after its
line. Data is converted here, in Python, rather than in SQL: SQLite's text and JSON functions
stop at a NUL, which run ids, actors, summaries and messages may hold.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

import orjson

from services.history.records import loads_json
from services.history.sqlite_rows import BODY, COLUMNS, micros
from services.history.sqlite_v1 import TABLE_COLUMNS as _V1

_TIMES = ("ts", "created_at", "accepted_at")
_JSON = ("payload", "details")
#: Rows converted per round.
CHUNK = 10_000


def _json(text: str | None) -> Any:
    """A 0001 JSON column as its reads returned it (an object, or anything else wrapped), for
    the body; text that is not JSON is kept as a string (it could not be read before)."""
    if text is None:
        return None
    try:
        return loads_json(text)
    except orjson.JSONDecodeError:
        return {"value": text}


def _row_0002(row: sqlite3.Row | tuple[Any, ...]) -> tuple[Any, ...]:
    old = dict(zip(_V1, row, strict=True))
    for name in _TIMES:
        old[name] = micros(datetime.fromisoformat(old[name]))
    for name in _JSON:
        old[name] = _json(old[name])
    body = orjson.dumps([old[name] for name in BODY]).decode()
    return (old["id"], *(old[c] for c in COLUMNS[:-1]), body)


def copy_0001_rows(conn: sqlite3.Connection) -> None:
    """Every 0001 row into the 0002 table, ids kept (cursors handed out stay valid)."""
    insert = (
        f"INSERT INTO history_0002 (id, {', '.join(COLUMNS)}) "
        f"VALUES ({', '.join('?' * (len(COLUMNS) + 1))})"
    )
    cursor = conn.execute(f"SELECT {', '.join(_V1)} FROM history ORDER BY id")
    while chunk := cursor.fetchmany(CHUNK):
        conn.executemany(insert, [_row_0002(row) for row in chunk])


#: Every step, by the name its ``-- @step`` line gives.
STEPS: Final[dict[str, Callable[[sqlite3.Connection], None]]] = {
    "copy_0001_rows": copy_0001_rows,
}
