"""The supervisor with real child processes (tiny Python scripts standing in for services)."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

from services.runtime.logic import ChildSpec
from services.runtime.readiness import http_ok
from services.runtime.supervisor import Supervisor

# Exits 0 on SIGTERM after writing a marker: a service that drains.
GRACEFUL = """
import signal, sys, time, pathlib
marker = pathlib.Path(sys.argv[1])
def stop(*_):
    marker.write_text("drained")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
pathlib.Path(sys.argv[2]).write_text("up")
while True:
    time.sleep(0.05)
"""
# Appends a line to a file and dies at once: a crashing service.
CRASHING = """
import sys, pathlib
with open(sys.argv[1], "a") as f:
    f.write("start\\n")
sys.exit(3)
"""
# Ignores SIGTERM: a stuck service.
STUCK = """
import signal, sys, time, pathlib
signal.signal(signal.SIGTERM, signal.SIG_IGN)
pathlib.Path(sys.argv[1]).write_text("up")
while True:
    time.sleep(0.05)
"""


def spec(name: str, script: str, *args: Path) -> ChildSpec:
    return ChildSpec(name, (sys.executable, "-c", script, *map(str, args)))


async def until(predicate, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_stop_forwards_sigterm_and_waits_for_the_drain(tmp_path: Path) -> None:
    # given two services that drain on SIGTERM
    specs = [spec(f"svc{n}", GRACEFUL, tmp_path / f"d{n}", tmp_path / f"u{n}") for n in (1, 2)]
    supervisor = Supervisor(specs)
    stop = asyncio.Event()
    task = asyncio.create_task(supervisor.run(stop))
    await until(lambda: all((tmp_path / f"u{n}").exists() for n in (1, 2)))
    # when the supervisor is told to stop
    stop.set()
    # then each child got SIGTERM, drained, and the supervisor reports success
    assert await task == 0
    assert all((tmp_path / f"d{n}").read_text() == "drained" for n in (1, 2))


async def test_a_crashing_child_is_restarted_with_backoff(tmp_path: Path) -> None:
    # given a service that dies right after starting
    log = tmp_path / "starts"
    supervisor = Supervisor([spec("crashy", CRASHING, log)], backoff=lambda n: 0.05 * n)
    stop = asyncio.Event()
    task = asyncio.create_task(supervisor.run(stop))
    # then it is started again and again
    await until(lambda: log.exists() and log.read_text().count("start") >= 3)
    stop.set()
    await task
    assert supervisor.restarts["crashy"] >= 2


async def test_a_child_that_ignores_sigterm_is_killed_after_the_timeout(tmp_path: Path) -> None:
    up = tmp_path / "up"
    supervisor = Supervisor([spec("stuck", STUCK, up)], stop_timeout_s=0.5)
    stop = asyncio.Event()
    task = asyncio.create_task(supervisor.run(stop))
    await until(up.exists)
    started = time.monotonic()
    stop.set()
    assert await task == 1
    assert time.monotonic() - started < 5
    pid = supervisor.pids["stuck"]
    try:
        os.kill(pid, 0)
        alive = True
    except ProcessLookupError:
        alive = False
    assert not alive


async def test_children_do_not_receive_the_terminals_sigint(tmp_path: Path) -> None:
    # given a supervised child in its own process group
    up = tmp_path / "u"
    supervisor = Supervisor([spec("svc", GRACEFUL, tmp_path / "d", up)])
    stop = asyncio.Event()
    task = asyncio.create_task(supervisor.run(stop))
    await until(up.exists)
    pid = supervisor.pids["svc"]
    # then its process group is its own, not ours (a Ctrl-C reaches only the supervisor)
    assert os.getpgid(pid) == pid != os.getpgid(0)
    stop.set()
    assert await task == 0


async def test_http_probe_is_false_when_nothing_listens() -> None:
    assert await http_ok("127.0.0.1", 1) is False
