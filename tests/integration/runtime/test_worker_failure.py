"""A stage whose worker dies must say why and exit non-zero, so that it gets restarted."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from tests.conftest import wait_for
from tests.integration.runtime.helpers import Runbus

pytestmark = pytest.mark.integration

#: A typo (two slashes): no history backend has this scheme, so the persister cannot start.
UNUSABLE_DATABASE_URL = "sqlite://history.db"


def records(path: Path) -> list[dict[str, object]]:
    """The JSON log records written so far."""
    lines = path.read_bytes().splitlines()
    return [orjson.loads(line) for line in lines if line.startswith(b"{")]


def test_a_persister_that_cannot_start_logs_why_and_exits_non_zero(
    runbus: Callable[..., Runbus], tmp_path: Path
) -> None:
    # given a persister whose database URL no backend can open
    persister = runbus("persister", database_url=UNUSABLE_DATABASE_URL)
    # when it runs
    proc = persister.start(subprocess.DEVNULL, subprocess.PIPE)
    _, err = proc.communicate(timeout=30)
    # then it exits non-zero, its last words an error record naming the cause
    assert proc.returncode != 0
    failed = [r for r in map(orjson.loads, err.splitlines()) if r["event"] == "worker_failed"]
    assert len(failed) == 1 and failed[0]["level"] == "error"
    assert "unsupported database URL" in str(failed[0]["error"])
    assert "Traceback" in str(failed[0]["exception"])


def test_run_all_restarts_a_persister_that_cannot_start(
    runbus: Callable[..., Runbus], tmp_path: Path
) -> None:
    # given the whole system on the same unusable database URL, its logs in a file
    log = tmp_path / "runbus.log"
    system = runbus("all", database_url=UNUSABLE_DATABASE_URL)
    with log.open("wb") as out:
        system.start(out, out)

    def restarted() -> bool:
        return any(
            r["event"] == "child_exited_restarting" and r["child"] == "persister"
            for r in records(log)
        )

    # then the supervisor sees the persister exit and restarts it (with backoff)
    wait_for(restarted, timeout=60, interval=0.2)
    system.signal(signal.SIGTERM)
    system.wait(30)
