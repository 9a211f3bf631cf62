"""A live runbus for the documentation's sessions: the validator, persister, coach and HTTP API
running in this process (one event loop in a thread), on the machine's Redis under a fresh
namespace, with a SQLite history in the test's tmp dir and the API on a free port.

The namespace has as many characters as ``runbus`` and the port as many digits as ``8000``, so
rich tables keep their widths when the output is rewritten to the page's names.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis

from services.api.app import serve_api
from services.coach.app import run_coach
from services.persister.app import run_persister
from services.validator.app import run_validator
from shared.names import Names
from shared.pipeline import PIPELINE
from shared.settings import REPO_ROOT, Settings
from tests.conftest import REDIS_URL
from tests.docs import forkserver
from tests.docs.forkserver import runbus_shim
from tests.docs.shell import Rewrite, Session, Step, check_steps

#: Letters that never occur in hex ids, so the namespace can be rewritten back safely.
NAMESPACE_LETTERS = "ghjkmnpqrstvwxyz"
SETTLE_TIMEOUT_S = 30.0


def fresh_namespace() -> str:
    """Six letters, like ``runbus``, unused on the machine's Redis."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        while True:
            ns = "q" + "".join(random.choices(NAMESPACE_LETTERS, k=5))
            if not client.exists(f"{{{ns}}}:events", f"{ns}:coach:projects"):
                return ns
    finally:
        client.close()


def free_port_4_digits() -> int:
    """A free loopback port of four digits, like 8000."""
    while True:
        port = random.randint(8001, 9999)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def live_settings(tmp: Path) -> Settings:
    """Settings of a system nobody else uses."""
    return Settings(
        redis_url=REDIS_URL,
        namespace=fresh_namespace(),
        database_url=f"sqlite:///{tmp / 'history.db'}",
        spool_path=tmp / "spool.db",
        api_port=free_port_4_digits(),
        block_ms=50,
        trim_interval_s=3600,  # lengths shown by a page stay put while it runs
        _env_file=None,  # type: ignore[call-arg]
    )


def shell_env(settings: Settings, bin_dir: Path) -> dict[str, str]:
    """The environment the page's commands run in: the test's system, a plain terminal."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNBUS_", "COLUMNS"))}
    env |= {
        "PATH": f"{bin_dir}:{REPO_ROOT / '.venv' / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}",
        "RUNBUS_REDIS_URL": settings.redis_url,
        "RUNBUS_NAMESPACE": settings.namespace,
        "RUNBUS_DATABASE_URL": settings.database_url,
        "RUNBUS_API_PORT": str(settings.api_port),
        "RUNBUS_SPOOL_PATH": str(settings.spool_path),
        "RUNBUS_OPERATOR": "alice",
        "RUNBUS_LOG_LEVEL": "WARNING",
        "COLUMNS": "100",
        "NO_COLOR": "1",
        "TERM": "dumb",
    }
    return env


def redis_cli_shim(bin_dir: Path) -> None:
    """`redis-cli` on the test's Redis URL, whatever it is."""
    shim = bin_dir / "redis-cli"
    shim.write_text(f'#!/bin/sh\nexec /usr/bin/redis-cli -u "{REDIS_URL}" "$@"\n')
    shim.chmod(0o755)


async def _serve(settings: Settings, stop: asyncio.Event) -> None:
    await asyncio.gather(
        run_validator(settings, stop),
        run_persister(settings, stop),
        run_coach(settings, stop),
        serve_api(settings, stop),
    )


@contextmanager
def running(settings: Settings) -> Iterator[None]:
    """The pipeline and the API serving until the block ends; the namespace removed after."""
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    thread = threading.Thread(target=loop.run_until_complete, args=(_serve(settings, stop),))
    thread.start()
    try:
        _wait_until_serving(settings, thread)
        yield
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=30)
        loop.close()
        _remove_namespace(settings.namespace)


def _wait_until_serving(settings: Settings, thread: threading.Thread) -> None:
    deadline = time.monotonic() + 30
    url = f"http://127.0.0.1:{settings.api_port}/healthz"
    while time.monotonic() < deadline and thread.is_alive():
        try:
            if httpx.get(url, timeout=1).status_code == 200 and _groups_exist(settings):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"the docs' live system did not start on port {settings.api_port}")


def _groups_exist(settings: Settings) -> bool:
    client = redis.Redis.from_url(settings.redis_url)
    try:
        names = settings.names
        return all(
            stage.group in _groups(client, names.stream(stage.reads)) for stage in PIPELINE.stages
        )
    finally:
        client.close()


def _groups(client: redis.Redis, stream: str) -> set[str]:
    try:
        return {_text(g["name"]) for g in client.xinfo_groups(stream)}
    except redis.ResponseError:  # no stream yet
        return set()


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def settled(settings: Settings) -> bool:
    """Has every group of runbus handled and acknowledged every entry of its stream?"""
    client = redis.Redis.from_url(settings.redis_url)
    try:
        for stream in (settings.names.events, settings.names.valid):
            if not client.exists(stream):
                continue
            last = client.xinfo_stream(stream)["last-generated-id"]
            for group in client.xinfo_groups(stream):
                if group["pending"] or group["last-delivered-id"] != last:
                    return False
        return True
    finally:
        client.close()


def settle(settings: Settings) -> None:
    """Wait (polling, with a deadline) until the pipeline has nothing left to do."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while not settled(settings):
        if time.monotonic() > deadline:
            raise AssertionError(f"the pipeline did not settle within {SETTLE_TIMEOUT_S}s")
        time.sleep(0.02)


def _remove_namespace(namespace: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        for pattern in Names(namespace).key_patterns:
            keys = list(client.scan_iter(match=pattern, count=1000))
            if keys:
                client.delete(*keys)
    finally:
        client.close()


@dataclass(frozen=True)
class Page:
    """A page's live system and the shell its sessions run in."""

    settings: Settings
    session: Session
    rewrite: Rewrite

    def run(self, all_steps: list[Step], printed: dict[Step, str] | None = None) -> list[str]:
        """Run `all_steps` in order; the failures (see `tests.docs.shell.check_steps`)."""
        return check_steps(
            self.session, self.rewrite, all_steps, lambda: settle(self.settings), printed
        )


@contextmanager
def page_system(tmp: Path) -> Iterator[Page]:
    """A live system of a page's own under `tmp`, a shell on it, and the `runbus` shim."""
    settings = live_settings(tmp)
    work = prepare_workdir(tmp)
    env = shell_env(settings, tmp / "bin")
    rewrite = Rewrite(settings.api_port, settings.namespace, socket.gethostname())
    with runbus_shim(tmp / "bin", env) if forkserver.wanted() else nullcontext():
        session = Session(work, env)
        try:
            with running(settings):
                yield Page(settings, session, rewrite)
        finally:
            session.close()


def prepare_workdir(tmp: Path) -> Path:
    """The shell's working directory: empty but for a link to docs_src (the page's scripts)."""
    work = tmp / "work"
    work.mkdir()
    (work / "docs_src").symlink_to(REPO_ROOT / "docs_src")
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    redis_cli_shim(bin_dir)
    return work
