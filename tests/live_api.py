"""A live ``runbus run api`` for tests that need a real server: browser tests, the contract fuzz.

The API runs as a subprocess on a free loopback port, against the machine's Redis under the
caller's namespace and a SQLite history in the caller's directory (or the database it names),
with no ``RUNBUS_*`` of the environment leaking in. It is ready when ``/readyz`` answers 200
(Redis and history both reachable); it is stopped with SIGTERM, as a supervisor would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import REDIS_URL, free_port

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0


@dataclass
class LiveApi:
    """A running ``runbus run api``."""

    base_url: str
    namespace: str
    log_path: Path

    def url(self, path: str) -> str:
        """The absolute URL of `path` on this API."""
        return self.base_url + path

    def log_tail(self, lines: int = 30) -> str:
        """The end of the API's log, for a failure message."""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def _api_env(namespace: str, database_url: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNBUS_")}
    env.update(
        RUNBUS_REDIS_URL=REDIS_URL,
        RUNBUS_NAMESPACE=namespace,
        RUNBUS_DATABASE_URL=database_url,
        RUNBUS_API_HOST="127.0.0.1",
        RUNBUS_API_PORT=str(port),
        RUNBUS_LOG_JSON="true",
    )
    return env


def _wait_ready(api: LiveApi, proc: subprocess.Popen[bytes]) -> None:
    """Poll ``/readyz`` until 200; fail with the log otherwise."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"runbus run api exited {proc.returncode}:\n{api.log_tail()}")
        try:
            if httpx.get(api.url("/readyz"), timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    pytest.fail(f"runbus run api not ready within {START_TIMEOUT_S}s:\n{api.log_tail()}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"runbus run api ignored SIGTERM for {STOP_TIMEOUT_S}s")


@contextlib.contextmanager
def run_api(
    namespace: str,
    workdir: Path,
    *,
    database_url: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[LiveApi]:
    """``runbus run api`` on a free loopback port for `namespace`, logging into `workdir`.

    The history is `database_url` (a SQLite file in `workdir` by default); `env` adds
    settings (a token, say).
    """
    port = free_port()
    api = LiveApi(f"http://127.0.0.1:{port}", namespace, workdir / "api.log")
    runbus = Path(sys.executable).with_name("runbus")
    environ = _api_env(namespace, database_url or f"sqlite:///{workdir / 'history.db'}", port)
    with api.log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(runbus), "run", "api"],
            env={**environ, **(env or {})},
            cwd=workdir,  # no .env of the checkout
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_ready(api, proc)
        yield api
    finally:
        _stop(proc)
