"""Fixtures shared by both tiers.

Integration tests isolate themselves: each gets its own namespace (so its own streams, groups
and keys) on the machine's Redis, its own PostgreSQL schema, and its own SQLite file. A test
that needs an outage starts a private redis-server on a free loopback port and breaks that one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest
import redis
import redis.asyncio as aredis

from shared.names import Names
from shared.settings import Settings
from tests.cluster import RedisClusterFixture

REDIS_URL = os.environ.get("RUNBUS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_DSN = os.environ.get(
    "RUNBUS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02) -> None:
    """Poll `predicate` until it is true; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def schema_url(schema: str) -> str:
    """The test database URL selecting `schema` (``?search_path=``)."""
    sep = "&" if "?" in POSTGRES_DSN else "?"
    return f"{POSTGRES_DSN}{sep}search_path={schema}"


@contextlib.contextmanager
def postgres_schema(schema: str, who: str) -> Iterator[str]:
    """A URL on a schema of its own on the machine's PostgreSQL, dropped afterwards.

    Fails the test loudly (never skips) when PostgreSQL does not answer.
    """

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(POSTGRES_DSN, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    # A fresh event loop in a thread: callers may be inside a running loop.
    def blocking(sql: str) -> None:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, run(sql)).result()

    try:
        blocking("SELECT 1")
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"{who} need PostgreSQL at {POSTGRES_DSN}: {exc}")
    try:
        yield schema_url(schema)
    finally:
        blocking(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def namespace() -> str:
    """A namespace no other test uses."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def settings(namespace: str, tmp_path: Path) -> Settings:
    """Settings isolated to this test: own namespace, own SQLite file, own spool."""
    return Settings(
        redis_url=REDIS_URL,
        namespace=namespace,
        database_url=f"sqlite:///{tmp_path / 'history.db'}",
        spool_path=tmp_path / "spool.db",
        claim_idle_ms=500,
        janitor_interval_s=0.2,
        block_ms=100,
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
def sync_client(namespace: str) -> Iterator[redis.Redis]:
    """A client on the machine's Redis; the namespace's keys are removed afterwards."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError as exc:  # fail loudly: never skip a missing server
        pytest.fail(f"integration tests need Redis at {REDIS_URL}: {exc}")
    yield client
    for pattern in Names(namespace).key_patterns:
        keys = list(client.scan_iter(match=pattern, count=1000))
        if keys:
            client.delete(*keys)
    client.close()


@pytest.fixture
async def async_client(sync_client: redis.Redis) -> AsyncIterator[aredis.Redis]:
    """An asyncio client on the machine's Redis (cleanup is the sync fixture's)."""
    client = aredis.Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


class RedisServer:
    """A private redis-server on a free loopback port, for outage tests."""

    def __init__(self, workdir: Path, appendonly: bool = False) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.appendonly = appendonly
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("outage tests need a redis-server binary (apt-get install redis-server)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", ""]
        args += ["--appendonly", "yes" if self.appendonly else "no", "--dir", str(self.workdir)]
        args += ["--logfile", str(self.workdir / "redis.log")]
        if self.appendonly:
            # stop() is a SIGKILL; with everysec a loaded machine can ack writes the AOF never got
            args += ["--appendfsync", "always"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except (redis.ConnectionError, redis.BusyLoadingError):
                return False

        try:
            wait_for(answers, timeout=20)
        finally:
            client.close()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """Factory of private redis-servers, all killed at the end of the test."""
    servers: list[RedisServer] = []

    def make(appendonly: bool = False, start: bool = True) -> RedisServer:
        server = RedisServer(tmp_path / f"redis-{len(servers)}", appendonly)
        servers.append(server)
        if start:
            server.start()
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterFixture]:
    """One real 3+3 Redis Cluster shared by the session's tests (each in its own namespace).

    Tests that break nodes (failover, resharding) use `private_cluster` instead.
    """
    cluster = RedisClusterFixture(tmp_path_factory.mktemp("cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def private_cluster(tmp_path: Path) -> Iterator[RedisClusterFixture]:
    """A 3+3 Redis Cluster of this test's own, to kill nodes of."""
    cluster = RedisClusterFixture(tmp_path / "cluster")
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
