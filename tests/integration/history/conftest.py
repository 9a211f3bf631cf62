"""History fixtures: a store on each backend, each test in its own SQLite file or PG schema."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest

from services.history import HistoryStore, store_for_url
from tests.conftest import POSTGRES_DSN, free_port
from tests.conftest import schema_url as pg_schema_url

T = TypeVar("T")


def in_thread(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine on its own loop in another thread (usable from sync fixtures)."""

    def runner() -> T:
        async def main() -> T:
            return await make()

        return asyncio.run(main())

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(runner).result()


async def _drop_schema(schema: str) -> None:
    conn = await asyncpg.connect(POSTGRES_DSN)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL on a schema of its own, dropped afterwards."""
    schema = f"hist_{uuid.uuid4().hex[:12]}"

    async def ping() -> None:
        conn = await asyncpg.connect(POSTGRES_DSN, timeout=5)
        await conn.close()

    try:
        in_thread(ping)
    except (OSError, asyncpg.PostgresError) as exc:  # fail loudly: never skip a missing server
        pytest.fail(f"integration tests need PostgreSQL at {POSTGRES_DSN}: {exc}")
    yield pg_schema_url(schema)
    in_thread(lambda: _drop_schema(schema))


@pytest.fixture(params=["sqlite", "postgres"])
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The database URL of each backend in turn."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'history.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
async def store(backend_url: str) -> AsyncIterator[HistoryStore]:
    """A migrated store on each backend."""
    history = store_for_url(backend_url)
    await history.open()
    await history.migrate()
    yield history
    await history.close()


async def raw_sql(url: str, sql: str, *args: Any) -> Any:
    """Run SQL straight on the database behind a store URL (bypassing the store)."""
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()
    pg = await asyncpg.connect(url)
    try:
        return await pg.fetch(sql, *args)
    finally:
        await pg.close()


#: What a backend raises when it refuses a statement.
REFUSALS = (sqlite3.DatabaseError, asyncpg.PostgresError)


class PostgresServer:
    """A private PostgreSQL cluster on a free loopback port, for outage stories.

    The machine's shared PostgreSQL is never stopped: this one lives in a temporary directory
    and is started and killed at will. PostgreSQL refuses to run as root, so as root the
    cluster is created and run as the ``postgres`` system user (``runuser``).
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="runbus-pg-"))
        self.data = self.workdir / "data"
        self.bin = _pg_bindir()
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.workdir, "postgres")
            self.workdir.chmod(0o700)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            log = self.workdir / "log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            pytest.fail(f"{args[0]} failed: {done.stdout}{done.stderr}{tail}")

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def start(self) -> None:
        # fsync=off is safe here: a killed server loses nothing the OS already has, and
        # synchronous_commit stays on so every acknowledged commit reached the OS.
        options = f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.workdir / "log"),
            "-w",
            "start",
        )

    def stop(self) -> None:
        """Kill it the hard way (a crash, as far as clients can tell)."""
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _pg_bindir() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    if initdb is None:
        pytest.fail("outage stories need PostgreSQL server binaries (initdb, pg_ctl)")
    return Path(initdb).parent


@pytest.fixture
def postgres_server() -> Iterator[PostgresServer]:
    """A private, started PostgreSQL cluster; removed at the end of the test."""
    server = PostgresServer()
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.remove()
