"""A Redis server of the benchmark's own, for figures no other client of the machine may skew.

INFO commandstats counts every client of a server. On the shared Redis (other runs, tests)
the dashboard part could not tell its API's commands from anybody else's, so it starts a
redis-server of its own on a free loopback port: no persistence, files under the run's
directory, stopped at the end (and with the benchmark, whatever happens).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

import redis

from bench.env import reap
from services.runtime.supervisor import dies_with_this_process

START_TIMEOUT_S = 15.0


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_command(binary: str, port: int, workdir: Path) -> list[str]:
    """The server's command line: loopback only, nothing written to disk but its log."""
    return [
        binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(workdir),
        "--save", "", "--appendonly", "no", "--protected-mode", "yes",
        "--daemonize", "no", "--logfile", "redis.log",
    ]  # fmt: skip


class PrivateRedis:
    """One redis-server started (and stopped) by the benchmark."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Its URL."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        """Start the server; return once it answers PING."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("the dashboard part needs redis-server on the PATH")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            server_command(binary, self.port, self.workdir),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=dies_with_this_process(),
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        client = redis.Redis(port=self.port, socket_timeout=1.0)
        try:
            while not self._answers(client):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"private redis-server on {self.port} did not start")
                time.sleep(0.05)
        finally:
            client.close()
        return self

    @staticmethod
    def _answers(client: redis.Redis) -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    def flush(self) -> None:
        """Remove every key (the server is this run's alone)."""
        client = redis.Redis(port=self.port)
        try:
            client.flushall()
        finally:
            client.close()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a few seconds."""
        if self.proc is None:
            return
        self.proc.terminate()
        reap(self.proc, 10)
        self.proc = None

    def __enter__(self) -> PrivateRedis:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def command_calls(client: redis.Redis) -> dict[str, int]:
    """Calls of each command the server has run so far (INFO commandstats)."""
    stats = client.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): int(doc["calls"])
        for name, doc in stats.items()
        if isinstance(doc, dict)
    }


def calls_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Calls of each command between two readings (commands that ran at least once)."""
    found = {name: after[name] - before.get(name, 0) for name in after}
    return {name: n for name, n in sorted(found.items()) if n > 0}
