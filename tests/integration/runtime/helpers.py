"""`runbus run ...` as a real process, and what the kernel says about it and its children."""

from __future__ import annotations

import asyncio
import os
import select
import signal
import subprocess
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from services.runtime.readiness import serves_instance
from tests.conftest import REDIS_URL, free_port, wait_for
from tests.integration.e2e.helpers import RUNBUS, system_env

Output = int | IO[bytes]


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie, exited but not reaped, does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def child_pids(pid: int) -> set[int]:
    """The direct children of `pid`, from /proc."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found |= {int(p) for p in (task / "children").read_text().split()}
        except FileNotFoundError:
            continue
    return found


@dataclass
class Runbus:
    """One `runbus run ARGS` process with its own namespace, API port and SQLite history."""

    args: tuple[str, ...]
    namespace: str
    workdir: Path
    database_url: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    instance: str = field(default_factory=lambda: f"test-{uuid.uuid4().hex[:8]}")
    proc: subprocess.Popen[bytes] | None = None
    #: Every child pid seen, so the clean-up can find orphans too.
    seen: set[int] = field(default_factory=set)

    def env(self) -> dict[str, str]:
        database = self.database_url or f"sqlite:///{self.workdir / 'history.db'}"
        env = system_env(self.namespace, REDIS_URL, database, self.port, self.workdir)
        del env["RUNBUS_LOG_JSON"]  # the format follows the output, as for a user
        env["RUNBUS_INSTANCE_ID"] = self.instance
        return env | self.extra_env

    def start(self, stdout: Output, stderr: Output) -> subprocess.Popen[bytes]:
        self.proc = subprocess.Popen(
            [str(RUNBUS), "run", *self.args],
            env=self.env(),
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
        )
        return self.proc

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def serving(self) -> bool:
        """True once the API answers /healthz for this instance (and the process still runs)."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"runbus exited with {self.proc.returncode}")
        return asyncio.run(serves_instance("127.0.0.1", self.port, self.instance))

    def wait_serving(self, children: int = 0, timeout: float = 60) -> set[int]:
        """Wait for the API and for `children` child processes; their pids."""
        wait_for(self.serving, timeout=timeout, interval=0.1)
        wait_for(lambda: len(child_pids(self.pid)) >= children, timeout=timeout)
        pids = child_pids(self.pid)
        self.seen |= pids
        return pids

    def signal(self, signum: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def wait(self, timeout: float) -> int:
        """The exit code; fails the test if the process is still running at the deadline."""
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"runbus {self.args} still runs after {timeout}s") from None

    def kill_all(self) -> None:
        """Clean-up: SIGKILL the process and whatever of its children is left."""
        if self.proc is None:
            return
        self.seen |= child_pids(self.pid)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        for pid in self.seen:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def all_gone(pids: set[int], timeout: float) -> None:
    """Wait until none of `pids` runs; the assertion names the survivors."""
    try:
        wait_for(lambda: not any(alive(p) for p in pids), timeout=timeout, interval=0.05)
    except AssertionError:
        survivors = {p: Path(f"/proc/{p}/cmdline").read_bytes() for p in pids if alive(p)}
        raise AssertionError(f"still running after {timeout}s: {survivors}") from None


class Pipe:
    """A pipe read by a thread, until its reader is closed (as ``| tee`` is by a Ctrl-C).

    The processes under test keep the write end; once the reader is gone their writes fail
    with EPIPE (or SIGPIPE).
    """

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        self.received = bytearray()
        self._open = True
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while self._open:
            ready, _, _ = select.select([self.read_fd], [], [], 0.05)
            if ready and self._open:
                chunk = os.read(self.read_fd, 65536)
                if not chunk:
                    return
                self.received += chunk

    def close_reader(self) -> None:
        """From now on, nobody reads: the kernel refuses every write."""
        self._open = False
        self._thread.join(5)
        os.close(self.read_fd)

    def close(self) -> None:
        if self._open:
            self.close_reader()
        os.close(self.write_fd)
