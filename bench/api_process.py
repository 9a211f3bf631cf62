"""``runbus run api`` as a process of the benchmark, on the benchmark's Redis and history.

Started exactly as an operator would (the venv's ``runbus``), on a free loopback port, with the
part's namespace and database in the environment and no other ``RUNBUS_*`` of the caller's;
ready once ``/readyz`` answers 200; stopped with SIGTERM (SIGKILL after a deadline). It dies
with the benchmark (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import httpx

from bench.env import RUNBUS, reap
from bench.private_redis import free_port
from services.runtime.supervisor import die_with_parent

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


def api_env(namespace: str, database_url: str, redis_url: str, port: int) -> dict[str, str]:
    """The API's environment: the caller's, minus its ``RUNBUS_*``, plus the part's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNBUS_")}
    env.update(
        RUNBUS_NAMESPACE=namespace,
        RUNBUS_DATABASE_URL=database_url,
        RUNBUS_REDIS_URL=redis_url,
        RUNBUS_API_HOST="127.0.0.1",
        RUNBUS_API_PORT=str(port),
        RUNBUS_LOG_LEVEL="WARNING",
        RUNBUS_LOG_JSON="true",
    )
    return env


class ApiProcess:
    """One running ``runbus run api``."""

    def __init__(
        self,
        namespace: str,
        database_url: str,
        redis_url: str,
        log_dir: Path,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.env = api_env(namespace, database_url, redis_url, self.port) | dict(extra_env or {})
        self.log_path = log_dir / f"{namespace}-api.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.began = 0.0

    @property
    def base_url(self) -> str:
        """Where it listens."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """Its process id (it must be running)."""
        if self.proc is None:
            raise RuntimeError("the API is not running")
        return self.proc.pid

    def start(self) -> float:
        """Spawn it and wait until ``/readyz`` answers 200; seconds it took."""
        self.spawn()
        return self.wait_ready()

    def spawn(self) -> None:
        """Spawn it (`wait_ready` waits for it): other work can go on while it starts."""
        self.began = time.monotonic()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(RUNBUS), "run", "api"],
                env=self.env,
                cwd=self.log_path.parent,  # no .env of the checkout
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )

    def wait_ready(self) -> float:
        """Wait until ``/readyz`` answers 200; seconds since it was spawned."""
        self._wait_ready(self.began + START_TIMEOUT_S)
        return time.monotonic() - self.began

    def _wait_ready(self, deadline: float) -> None:
        while not self._ready():
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"runbus run api exited: {self.log_tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"runbus run api not ready in time: {self.log_tail()}")
            time.sleep(0.1)

    def _ready(self) -> bool:
        try:
            return httpx.get(self.base_url + "/readyz", timeout=2.0).status_code == 200
        except httpx.TransportError:
            return False

    def log_tail(self, lines: int = 15) -> str:
        """The end of its log (for error reports)."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> int | None:
        """SIGTERM (it closes its streams and resources), SIGKILL at the deadline."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = reap(self.proc, STOP_TIMEOUT_S)
        self.proc = None
        return code

    def __enter__(self) -> ApiProcess:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
