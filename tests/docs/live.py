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
import re
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
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
from tests.docs import forkserver, page_extras
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


#: The stages the live system runs, by name (what a page's restart step names).
STAGE_RUNNERS: dict[str, Callable[[Settings, asyncio.Event], Awaitable[object]]] = {
    "validator": run_validator,
    "persister": run_persister,
    "coach": run_coach,
}
#: The host the pages' consumer names show (`<stage>-vm-<slot>`): the live stages are named so
#: whatever the machine, and tables keep the widths the page shows.
PAGE_HOST = "vm"


def stage_settings(settings: Settings, stage: str) -> Settings:
    """`settings` for one stage, its consumer named as on a host called `PAGE_HOST`."""
    return settings.model_copy(update={"consumer_name": f"{stage}-{PAGE_HOST}-0"})


class LiveSystem:
    """The stages and the API, each a task of one event loop in a thread; a stage can be
    restarted with other settings (a page's ``$ # restart the validator with VAR=value``)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._tasks: dict[str, tuple[asyncio.Event, asyncio.Future[object]]] = {}

    def start(self) -> None:
        """Every stage and the API, serving."""
        self._thread.start()
        for stage, runner in STAGE_RUNNERS.items():
            self._start(stage, runner, stage_settings(self.settings, stage))
        self._start("api", serve_api, self.settings)
        _wait_until_serving(self.settings, self._thread)

    def _start(
        self,
        name: str,
        runner: Callable[[Settings, asyncio.Event], Awaitable[object]],
        settings: Settings,
    ) -> None:
        async def create() -> tuple[asyncio.Event, asyncio.Future[object]]:
            stop = asyncio.Event()
            return stop, asyncio.ensure_future(runner(settings, stop))

        self._tasks[name] = asyncio.run_coroutine_threadsafe(create(), self._loop).result(10)

    def _stop(self, name: str) -> None:
        stop, task = self._tasks.pop(name)
        self._loop.call_soon_threadsafe(stop.set)

        async def finished() -> None:
            await asyncio.wait_for(asyncio.shield(task), timeout=30)

        asyncio.run_coroutine_threadsafe(finished(), self._loop).result(40)

    def restart(self, stage: str, changes: dict[str, object]) -> None:
        """Stop `stage`, wait until it has finished, start it again with `changes`."""
        self._stop(stage)
        settings = Settings.model_validate(self.settings.model_dump() | changes)
        self._start(stage, STAGE_RUNNERS[stage], stage_settings(settings, stage))

    def close(self) -> None:
        """Stop everything, end the loop."""
        for name in list(self._tasks):
            self._stop(name)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()


@contextmanager
def running(settings: Settings) -> Iterator[LiveSystem]:
    """The pipeline and the API serving until the block ends; the namespace removed after."""
    system = LiveSystem(settings)
    try:
        system.start()
        yield system
    finally:
        system.close()
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


#: A page's restart step: ``$ # restart the validator with RUNBUS_EXTRA_CODES_FILE=x.json``
#: (a comment to the shell; the harness restarts that stage of the live system so). Without
#: settings (``$ # restart the persister with its own settings``) the stage gets the page's.
RESTART = re.compile(
    r"^# restart the (?P<stage>\w+)\b(?: with (?P<env>(?:RUNBUS_\w+=[^\s,]+[ ,]*)+))?"
)
SETTING = re.compile(r"RUNBUS_(?P<name>\w+)=(?P<value>[^\s,]+)")


def restart_changes(command: str, work: Path) -> tuple[str, dict[str, object]] | None:
    """The stage and the settings a restart step names (values that name a file of the
    page's directory made absolute: the stage runs in the test's process), else None."""
    found = RESTART.match(command)
    if not found:
        return None
    changes: dict[str, object] = {}
    for setting in SETTING.finditer(found["env"] or ""):
        value = setting["value"]
        changes[setting["name"].lower()] = str(work / value) if (work / value).exists() else value
    return found["stage"], changes


@dataclass(frozen=True)
class Page:
    """A page's live system and the shell its sessions run in."""

    system: LiveSystem
    session: Session
    rewrite: Rewrite
    work: Path
    extras: page_extras.Extras

    @property
    def settings(self) -> Settings:
        """The live system's settings."""
        return self.system.settings

    def act(self, step: Step) -> None:
        """Do what a step asks of the harness itself (a restart, a page's action), before the
        shell runs it."""
        command = self.rewrite.command(step.command)
        restart = restart_changes(command, self.work)
        if restart is not None:
            self.system.restart(*restart)
        self.extras.act(command, self.work)

    def run(self, all_steps: list[Step], printed: dict[Step, str] | None = None) -> list[str]:
        """Run `all_steps` in order; the failures (see `tests.docs.shell.check_steps`)."""
        return check_steps(
            self.session,
            self.rewrite,
            all_steps,
            lambda: settle(self.settings),
            printed,
            before=self.act,
        )


@contextmanager
def page_system(tmp: Path, page: Path | None = None) -> Iterator[Page]:
    """A live system of a page's own under `tmp`, a shell on it, and the `runbus` shim; with
    what the page needs besides (`tests.docs.page_extras`)."""
    settings = live_settings(tmp)
    work = prepare_workdir(tmp)
    env = shell_env(settings, tmp / "bin")
    with page_extras.for_page(page, settings) as extras:
        rewrite = Rewrite(
            settings.api_port, settings.namespace, socket.gethostname(), extras.commands
        )  # fmt: skip
        with runbus_shim(tmp / "bin", env) if forkserver.wanted() else nullcontext():
            session = Session(work, env)
            try:
                with running(settings) as system:
                    yield Page(system, session, rewrite, work, extras)
            finally:
                session.close()


def prepare_workdir(tmp: Path) -> Path:
    """The shell's working directory: empty but for a link to docs_src (the page's scripts)."""
    work = tmp / "work"
    work.mkdir()
    (work / "docs_src").symlink_to(REPO_ROOT / "docs_src")
    # The SQL files the pages run with psql, where a clone has them.
    (work / "services" / "history").mkdir(parents=True)
    (work / "services" / "history" / "sql").symlink_to(REPO_ROOT / "services/history/sql")
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    redis_cli_shim(bin_dir)
    return work
