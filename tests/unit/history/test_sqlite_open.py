"""Opening a new SQLite history from several connections at once (persister, API, CLI)."""

from __future__ import annotations

import threading
from pathlib import Path

from services.history.sqlite import SqliteHistoryStore


def test_connections_opening_a_new_file_together_all_get_it_in_wal_mode(tmp_path: Path) -> None:
    # Given many fresh files, each opened by six connections at the same moment
    # (SQLite answers "database is locked" at once, without waiting, to a WAL switch racing
    # another one: this failed about once in 30 rounds before the switch was retried)
    errors: list[Exception] = []
    modes: list[str] = []

    def open_one(path: Path) -> None:
        try:
            conn = SqliteHistoryStore(path)._connect()
            modes.append(conn.execute("PRAGMA journal_mode").fetchone()[0])
            conn.close()
        except Exception as exc:
            errors.append(exc)

    for round_ in range(60):
        path = tmp_path / f"h{round_}.db"
        threads = [threading.Thread(target=open_one, args=(path,)) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    # Then every connection opened, in WAL mode
    assert errors == []
    assert modes == ["wal"] * 360
