"""One persister per SQLite file: the lock beside the database, and what it leaves alone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.history import HistoryInUse, sole_writer
from services.history.sqlite import lock_path, persister_lock


def test_a_second_holder_is_refused_with_the_stable_code_and_the_holders_pid(
    tmp_path: Path,
) -> None:
    db = tmp_path / "history.db"
    # Given a persister holding the lock of a database file
    with persister_lock(db) as held:
        assert held == tmp_path / "history.db.persister.lock" == lock_path(db)
        # When another one asks for it (flock is per open file: same process or not)
        with pytest.raises(HistoryInUse) as refused, persister_lock(db):
            pass
    # Then it is refused with the stable code, naming the holder
    message = str(refused.value)
    assert refused.value.code == "history_in_use" and message.startswith("history_in_use: ")
    assert f"pid {os.getpid()}" in message and str(held) in message


def test_the_lock_is_free_again_once_its_holder_lets_go(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    # Given a lock taken and released
    with persister_lock(db):
        pass
    # Then the next persister gets it (the file stays behind, harmless)
    with persister_lock(db):
        assert lock_path(db).exists()


def test_other_files_and_postgres_take_no_lock(tmp_path: Path) -> None:
    # Given a persister on one SQLite file
    with sole_writer(f"sqlite:///{tmp_path / 'a.db'}"):
        # Then one on another file, and any number on PostgreSQL, start alongside it
        with sole_writer(f"sqlite:///{tmp_path / 'b.db'}"):
            pass
        url = "postgresql://runbus@127.0.0.1/test"
        with sole_writer(url), sole_writer(url):
            pass
        # But one more on the same file (spelled as the URL says) is refused
        with pytest.raises(HistoryInUse), sole_writer(f"sqlite:///{tmp_path / 'a.db'}"):
            pass
