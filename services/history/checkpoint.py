"""Background WAL checkpoints for the SQLite history's writer.

SQLite checkpoints a WAL file by default inside the commit that pushes it past 1000 pages: that
commit then copies the WAL into the database file and syncs it, tens of milliseconds on a
virtual disk, and every event in the batch waits for it (the p99 of publish -> history at 1k
ev/s). The writer connection instead raises its automatic threshold to a safety net
(`SAFETY_NET_PAGES`, only reached if this thread falls far behind) and a thread with its own
connection runs a ``PASSIVE`` checkpoint shortly after commits (`INTERVAL_S`): it never waits
for the writer or for readers, so commits no longer stall, and the WAL is still reset and
reused as before (a complete checkpoint lets the next commit start the file over).

`close` stops the thread after a last checkpoint; SQLite itself removes the WAL when the last
connection to the file closes.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable

from shared.logging import get_logger

log = get_logger("runbus.history")

#: How long after a commit the checkpoint runs: commits of that window share one checkpoint.
INTERVAL_S = 0.2
#: The writer's own automatic checkpoint, kept as a bound on the WAL (about 64 MB of 4 KB pages).
SAFETY_NET_PAGES = 16384


class Checkpointer:
    """A daemon thread that checkpoints the WAL after commits (`touch`), until `close`."""

    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._connect = connect
        self._dirty = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sqlite-checkpoint", daemon=True)
        self.checkpoints = 0
        """Checkpoints run so far (for tests and diagnostics)."""

    @staticmethod
    def adopt(writer: sqlite3.Connection) -> None:
        """Hand the writer's checkpoints over: only the safety net stays in its commits."""
        writer.execute(f"PRAGMA wal_autocheckpoint={SAFETY_NET_PAGES}")

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def touch(self) -> None:
        """A commit happened: checkpoint soon."""
        self._dirty.set()

    def close(self) -> None:
        """Stop the thread, after its checkpoint in progress and a last one."""
        self._stopping.set()
        self._dirty.set()
        if self._thread.is_alive():
            self._thread.join()

    def _loop(self) -> None:
        conn = self._connect()
        try:
            while not self._stopping.is_set():
                self._dirty.wait()
                if self._stopping.wait(INTERVAL_S):
                    break
                self._dirty.clear()
                self._checkpoint(conn, "PASSIVE")
            self._checkpoint(conn, "PASSIVE")
        finally:
            conn.close()

    def _checkpoint(self, conn: sqlite3.Connection, mode: str) -> None:
        try:
            conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        except sqlite3.Error as exc:  # a busy or vanished file: the next commit tries again
            log.warning("wal_checkpoint_failed", mode=mode, error=repr(exc))
            return
        self.checkpoints += 1
