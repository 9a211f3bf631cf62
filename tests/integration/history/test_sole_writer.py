"""One persister per SQLite file: a second one is refused, the first keeps writing.

Real `runbus run persister` processes on one file: the lock must be the kernel's (flock), so
it goes with its holder even on SIGKILL.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import redis

from services.history.sqlite import lock_path
from shared.settings import Settings
from shared.wire import DATA_FIELD, envelope_body
from tests.conftest import REDIS_URL, free_port, wait_for
from tests.integration.e2e.helpers import RUNBUS, system_env
from tests.integration.history.factory import at, brewslm

pytestmark = pytest.mark.integration


@pytest.fixture
def persisters(settings: Settings, tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`runbus run persister` processes started by the test; killed at its end."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def start_persister(
    settings: Settings, workdir: Path, started: list[subprocess.Popen[bytes]]
) -> subprocess.Popen[bytes]:
    env = system_env(settings.namespace, REDIS_URL, settings.database_url, free_port(), workdir)
    proc = subprocess.Popen([str(RUNBUS), "run", "persister"], env=env, cwd=workdir,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)  # fmt: skip
    started.append(proc)
    return proc


def publish(client: redis.Redis, settings: Settings, start: int, count: int) -> None:
    """Envelopes ``w<start>`` .. on the valid stream, as the validator writes them."""
    for i in range(start, start + count):
        env = brewslm("exp-13", at(i), event_id=f"w{i}")
        client.xadd(settings.names.valid, {DATA_FIELD: envelope_body(env)})


def stored(settings: Settings) -> int:
    """Events in the history, read as the API and CLI read it (no lock taken)."""
    path = settings.database_url.removeprefix("sqlite:///")
    try:
        db = sqlite3.connect(path, timeout=5)
        try:
            return int(db.execute("SELECT count(*) FROM history").fetchone()[0])
        finally:
            db.close()
    except sqlite3.OperationalError:  # not created or not migrated yet
        return 0


def test_a_second_persister_on_one_sqlite_file_is_refused_and_the_lock_dies_with_its_holder(
    settings: Settings,
    sync_client: redis.Redis,
    tmp_path: Path,
    persisters: list[subprocess.Popen[bytes]],
) -> None:
    # Given a persister writing the history file
    publish(sync_client, settings, 0, 50)
    first = start_persister(settings, tmp_path, persisters)
    wait_for(lambda: stored(settings) == 50, timeout=30)
    # When a second persister starts on the same file
    second = start_persister(settings, tmp_path, persisters)
    _, err = second.communicate(timeout=30)
    # Then it exits non-zero at once, its one error line naming the stable code and the holder
    assert second.returncode != 0
    logged = [orjson.loads(line) for line in err.splitlines() if line.startswith(b"{")]
    failed = [r for r in logged if r["event"] == "worker_failed"]
    assert len(failed) == 1 and failed[0]["level"] == "error", logged
    assert "history_in_use" in str(failed[0]["error"])
    assert f"pid {first.pid}" in str(failed[0]["error"])
    # And the first one keeps writing (and readers were never refused)
    publish(sync_client, settings, 50, 50)
    wait_for(lambda: stored(settings) == 100, timeout=30)
    assert first.poll() is None
    # When the first one is killed without a chance to clean up
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    assert lock_path(settings.database_url.removeprefix("sqlite:///")).exists()
    # Then a new persister starts fine on the file and stores what comes next
    third = start_persister(settings, tmp_path, persisters)
    publish(sync_client, settings, 100, 50)
    wait_for(lambda: stored(settings) == 150, timeout=30)
    assert third.poll() is None
    third.send_signal(signal.SIGTERM)
    assert third.wait(30) == 0
