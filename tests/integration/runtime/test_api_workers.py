"""``RUNBUS_API_WORKERS=N``: N API processes serving one port, each a supervised child (of
``runbus run api`` or of ``runbus run all``), none outliving its supervisor (issue #11's rules)."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from services.runtime.readiness import http_get
from tests.conftest import wait_for
from tests.integration.runtime.helpers import Runbus, all_gone, child_pids

pytestmark = pytest.mark.integration

WORKERS = 2
#: Generous for two loaded cores; a healthy stop takes about a second.
STOP_DEADLINE_S = 20.0
#: Five processes importing at once on two loaded cores took over a minute once (20 s alone).
START_DEADLINE_S = 150.0


def listening_inodes(port: int) -> set[str]:
    """Socket inodes listening on `port` (any loopback address), from /proc/net."""
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                found.add(fields[9])
    return found


def listens(pid: int, port: int) -> bool:
    """True when `pid` holds a socket listening on `port`."""
    inodes = listening_inodes(port)
    try:
        links = [p.readlink() for p in Path(f"/proc/{pid}/fd").iterdir()]
    except OSError:
        return False
    return any(str(link).removeprefix("socket:[").rstrip("]") in inodes for link in links)


def workers(runbus: Callable[..., Runbus], *args: str) -> Runbus:
    return runbus(*args, extra_env={"RUNBUS_API_WORKERS": str(WORKERS)})


def test_run_api_serves_one_port_from_several_processes_and_stops_them_all(
    runbus: Callable[..., Runbus],
) -> None:
    # given `runbus run api` with two workers
    api = workers(runbus, "api")
    api.start(subprocess.DEVNULL, subprocess.DEVNULL)
    children = api.wait_serving(children=WORKERS, timeout=START_DEADLINE_S)
    # then each worker listens on the one port itself (SO_REUSEPORT), the supervisor does not
    assert len(children) == WORKERS
    wait_for(lambda: all(listens(pid, api.port) for pid in children), timeout=30)
    assert not listens(api.pid, api.port)
    # when it is sent SIGTERM, it and both workers stop, with 0
    api.signal(signal.SIGTERM)
    assert api.wait(STOP_DEADLINE_S) == 0
    all_gone(children, STOP_DEADLINE_S)


def test_a_killed_api_supervisor_takes_its_workers_with_it(
    runbus: Callable[..., Runbus],
) -> None:
    api = workers(runbus, "api")
    api.start(subprocess.DEVNULL, subprocess.DEVNULL)
    children = api.wait_serving(children=WORKERS, timeout=START_DEADLINE_S)
    api.signal(signal.SIGKILL)
    api.wait(STOP_DEADLINE_S)
    all_gone(children, STOP_DEADLINE_S)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_run_all_supervises_every_api_worker(
    runbus: Callable[..., Runbus], signum: signal.Signals
) -> None:
    # given `runbus run all` with two API workers: three stages and two APIs
    system = workers(runbus, "all")
    system.start(subprocess.DEVNULL, subprocess.DEVNULL)
    children = system.wait_serving(children=3 + WORKERS, timeout=START_DEADLINE_S)
    apis = {pid for pid in children if listens(pid, system.port)}
    wait_for(lambda: len({p for p in children if listens(p, system.port)}) == WORKERS, timeout=30)
    # when the supervisor is stopped, every child stops and it exits 0
    system.signal(signum)
    assert system.wait(STOP_DEADLINE_S) == 0
    all_gone(children | apis, STOP_DEADLINE_S)


def test_a_port_held_elsewhere_refuses_the_workers_with_one_line(
    runbus: Callable[..., Runbus],
) -> None:
    # given the port taken by another program (no SO_REUSEPORT: the workers could not join it)
    api = workers(runbus, "api")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", api.port))
        holder.listen()
        proc = api.start(subprocess.DEVNULL, subprocess.PIPE)
        # then the supervisor refuses at once, exit 2, with one line naming the port
        assert api.wait(STOP_DEADLINE_S) == 2
        assert proc.stderr is not None
        lines = proc.stderr.read().decode().strip().splitlines()
        assert len(lines) == 1 and str(api.port) in lines[0]


def _instance(port: int) -> str | None:
    answer = asyncio.run(http_get("127.0.0.1", port, "/healthz"))
    if answer is None or answer[0] != 200:
        return None
    return str(orjson.loads(answer[1])["instance"])


def test_every_api_worker_names_the_same_instance(runbus: Callable[..., Runbus]) -> None:
    # given `runbus run api` with two workers and no instance id of the caller's
    api = runbus("api", extra_env={"RUNBUS_API_WORKERS": str(WORKERS), "RUNBUS_INSTANCE_ID": ""})
    api.start(subprocess.DEVNULL, subprocess.DEVNULL)
    wait_for(lambda: len(child_pids(api.pid)) == WORKERS, timeout=60)
    api.seen |= child_pids(api.pid)
    wait_for(lambda: all(listens(p, api.port) for p in child_pids(api.pid)), timeout=60)
    # then /healthz over many fresh connections (spread over both workers) names one instance
    seen = {_instance(api.port) for _ in range(40)}
    assert len(seen) == 1 and None not in seen
