"""Where the benchmark runs: servers, the machine's description, and cleaning up after itself.

Every run works in namespaces of its own (``bench<hex>-<part>``), SQLite files under
``var/bench-<hex>/`` and PostgreSQL schemas ``bench_<hex>_<part>`` in database ``test``; all
of them are removed at the end, whatever happened.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import redis

from services.history import store_for_url
from shared.names import Names
from shared.settings import REPO_ROOT

REDIS_URL = os.environ.get("RUNBUS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get(
    "RUNBUS_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
#: The CLI the services are started with, exactly as an operator would (from this venv).
RUNBUS = Path(sys.executable).parent / "runbus"


@dataclass
class Workspace:
    """Names one benchmark run owns, and what must be removed afterwards."""

    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    namespaces: list[str] = field(default_factory=list)
    schemas: list[str] = field(default_factory=list)

    @property
    def directory(self) -> Path:
        """SQLite files of this run (on the same disk as the default ``var/history.db``)."""
        return REPO_ROOT / "var" / f"bench-{self.run_id}"

    def namespace(self, part: str) -> str:
        """A fresh namespace for one part of the run."""
        name = f"bench{self.run_id}-{part}"
        self.namespaces.append(name)
        return name

    def sqlite_url(self, part: str) -> str:
        """A fresh SQLite database URL for one part of the run."""
        self.directory.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{self.directory / (part + '.db')}"

    def postgres_url(self, part: str) -> str:
        """A fresh PostgreSQL schema (created by the store's migration) for one part."""
        schema = f"bench_{self.run_id}_{part}"
        self.schemas.append(schema)
        return f"{POSTGRES_URL}?search_path={schema}"

    def clean(self) -> None:
        """Remove every key, schema and file this run created."""
        client = redis.Redis.from_url(REDIS_URL)
        try:
            for namespace in self.namespaces:
                delete_namespace(client, namespace)
        finally:
            client.close()
        self.namespaces.clear()
        for schema in self.schemas:
            drop_schema(schema)
        self.schemas.clear()
        shutil.rmtree(self.directory, ignore_errors=True)


def delete_namespace(client: redis.Redis, namespace: str) -> int:
    """UNLINK every key of a namespace (streams are hash-tagged, caches are not)."""
    removed = 0
    for pattern in Names(namespace).key_patterns:
        batch: list[bytes] = []
        for key in client.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= 500:
                removed += int(client.unlink(*batch))
                batch = []
        if batch:
            removed += int(client.unlink(*batch))
    return removed


def drop_schema(schema: str) -> None:
    """DROP SCHEMA ... CASCADE (history tables are append-only, but a schema can go)."""
    import asyncio

    async def drop() -> None:
        conn = await asyncpg.connect(POSTGRES_URL)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()

    asyncio.run(drop())


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _postgres_version() -> str | None:
    import asyncio

    async def version() -> str:
        conn = await asyncpg.connect(POSTGRES_URL)
        try:
            return str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()

    try:
        return asyncio.run(version())
    except (OSError, asyncpg.PostgresError):
        return None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        redis_version = str(client.info("server").get("redis_version"))
    finally:
        client.close()
    import hiredis  # noqa: F401  (the consume limit depends on it: fail if it is missing)

    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gb": _ram_gb(),
        "python": platform.python_version(),
        "redis": redis_version,
        "postgres": _postgres_version(),
        "os": f"{platform.system()} {platform.release()}",
        "hiredis": True,
        "commit": _git_commit(),
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def reap(proc: subprocess.Popen[Any], timeout: float) -> int:
    """Wait up to `timeout` seconds for `proc` to exit, SIGKILL it after that; its exit code."""
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


async def migrate_history(url: str) -> None:
    """Create (or bring up to date) the history schema at `url` by the real migrations."""
    store = store_for_url(url)
    await store.open()
    try:
        await store.migrate()
    finally:
        await store.close()
