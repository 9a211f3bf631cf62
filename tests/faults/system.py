"""The real system under fault: service processes started, killed and restarted at will.

`System` runs ``.venv/bin/runbus run validator|persister|coach`` (or any command) as child
processes with a given environment, one `Replica` per consumer name, and answers questions
about the consumer groups (what a consumer holds, whether a group caught up with a point of
the stream, whether the whole pipeline is quiescent). `PrivateRedis` is a redis-server of the
test's own (AOF, ``appendfsync always``) that may be crashed and restarted on the same port.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis

from shared.names import Names
from shared.pipeline import PIPELINE
from shared.settings import REPO_ROOT
from tests.conftest import RedisServer, wait_for

RUNBUS = REPO_ROOT / ".venv" / "bin" / "runbus"
#: Which (stream, group) each service consumes.
STAGE_GROUPS = {stage.name: stage.group for stage in PIPELINE.stages}


def id_key(entry_id: bytes | str) -> tuple[int, int]:
    """Order of stream entry ids."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass
class Replica:
    """One service process (restartable): its consumer name, environment and log file."""

    service: str
    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    kills: int = 0
    retired: bool = False  # killed on purpose and left dead

    @property
    def alive(self) -> bool:
        """The process runs."""
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        """Start (or restart) the process; its output is appended to its log file."""
        assert not self.alive, f"{self.name} is already running"
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.starts + 1} ---\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.command, env=self.env, cwd=self.log_path.parent, stdout=log, stderr=log
            )
        self.starts += 1

    def signal(self, sig: signal.Signals, timeout: float = 30.0) -> int:
        """Send `sig` and wait for the exit; the exit code."""
        assert self.proc is not None, f"{self.name} never started"
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        if sig is signal.SIGKILL:
            self.kills += 1
        return code


@dataclass
class GroupState:
    """One consumer group at one instant."""

    last_delivered: tuple[int, int]
    pending: int
    min_pending: tuple[int, int] | None
    consumers: dict[str, int] = field(default_factory=dict)


class System:
    """Service processes on one namespace, plus the questions the fault tests ask of Redis."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.names = Names(env["RUNBUS_NAMESPACE"])
        self.redis_url = env["RUNBUS_REDIS_URL"]
        self.client = redis.Redis.from_url(self.redis_url, socket_timeout=10)
        self.replicas: dict[str, Replica] = {}
        workdir.mkdir(parents=True, exist_ok=True)

    # --- processes ------------------------------------------------------------------------

    def start(self, service: str, name: str | None = None, **env: str) -> Replica:
        """Start ``runbus run <service>`` as consumer `name` (default ``<service>-0``)."""
        return self.spawn(service, [str(RUNBUS), "run", service], name, **env)

    def spawn(
        self, service: str, command: list[str], name: str | None = None, **env: str
    ) -> Replica:
        """Start any command as a replica of `service` (consumer `name`)."""
        name = name or f"{service}-0"
        assert name not in self.replicas, f"replica {name} exists"
        full_env = self.env | {"RUNBUS_CONSUMER_NAME": name} | env
        replica = Replica(service, name, command, full_env, self.workdir / f"{name}.log")
        self.replicas[name] = replica
        replica.start()
        return replica

    def python(self, module: str) -> list[str]:
        """The command running ``python -m module`` with the project's interpreter."""
        return [sys.executable, "-m", module]

    def stop_all(self, timeout: float = 30.0) -> dict[str, int]:
        """SIGTERM every live replica (they drain) and wait; their exit codes."""
        live = [r for r in self.replicas.values() if r.alive and r.proc is not None]
        for replica in live:
            replica.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        return {r.name: r.proc.wait(timeout) for r in live}  # type: ignore[union-attr]

    def kill_all(self) -> None:
        """SIGKILL whatever still runs (teardown)."""
        for replica in self.replicas.values():
            if replica.alive:
                replica.signal(signal.SIGKILL)

    def assert_alive(self) -> None:
        """Fail (with the log tails) if a replica that should run has exited."""
        dead = [r for r in self.replicas.values() if r.proc and not r.alive and not r.retired]
        if dead:
            pytest.fail(f"replica(s) exited: {[r.name for r in dead]}\n{self.tails()}")

    def tails(self, lines: int = 15) -> str:
        """The last lines of every replica's log (for failure messages)."""
        out = []
        for replica in self.replicas.values():
            text = replica.log_path.read_text(errors="replace") if replica.log_path.exists() else ""
            out.append(f"== {replica.name}\n" + "\n".join(text.splitlines()[-lines:]))
        return "\n".join(out)

    # --- groups ---------------------------------------------------------------------------

    def stream_of(self, service: str) -> str:
        """The stream a service consumes."""
        return self.names.stream(PIPELINE.stage(service).reads)

    def groups(self) -> list[tuple[str, str]]:
        """Every (stream, group) of the pipeline, upstream first."""
        return [(self.stream_of(s), g) for s, g in STAGE_GROUPS.items()]

    def last_id(self, stream: str) -> tuple[int, int]:
        """The last id generated on a stream (0-0 when it does not exist)."""
        try:
            return id_key(self.client.xinfo_stream(stream)["last-generated-id"])
        except redis.ResponseError:
            return (0, 0)

    def group(self, service: str) -> GroupState | None:
        """The state of a service's group (None while it does not exist); one round trip."""
        stream, name = self.stream_of(service), STAGE_GROUPS[service]
        with self.client.pipeline(transaction=False) as pipe:
            pipe.xinfo_groups(stream)
            pipe.xpending(stream, name)
            pipe.xinfo_consumers(stream, name)
            infos, summary, consumers = pipe.execute(raise_on_error=False)
        if isinstance(infos, Exception) or isinstance(summary, Exception):
            return None  # no stream or no group yet
        info = next((g for g in infos if _text(g["name"]) == name), None)
        if info is None:
            return None
        held = {_text(c["name"]): int(c["pending"]) for c in consumers}
        low = id_key(summary["min"]) if summary["pending"] else None
        return GroupState(id_key(info["last-delivered-id"]), int(summary["pending"]), low, held)

    def held(self, replica: Replica) -> int:
        """Entries delivered to the replica's consumer and not yet acknowledged."""
        state = self.group(replica.service)
        return state.consumers.get(replica.name, 0) if state else 0

    def marks(self) -> dict[str, tuple[int, int]]:
        """The last id of every stream now: what "caught up" is measured against."""
        return {stream: self.last_id(stream) for stream in (self.names.events, self.names.valid)}

    def caught_up(self, marks: dict[str, tuple[int, int]], services: tuple[str, ...]) -> bool:
        """Every entry up to the marks was delivered to and acknowledged by these services."""
        for service in services:
            state = self.group(service)
            mark = marks[self.stream_of(service)]
            if state is None or state.last_delivered < mark:
                return False
            if state.min_pending is not None and state.min_pending <= mark:
                return False
        return True

    def wait_caught_up(
        self, services: tuple[str, ...] = tuple(STAGE_GROUPS), timeout: float = 60.0
    ) -> float:
        """Wait until the services handled everything on their streams now; seconds taken.

        The valid stream's mark is re-read once the validator caught up: what it forwarded
        meanwhile belongs to the same backlog.
        """
        began = time.monotonic()
        marks = self.marks()
        if "validator" in services:
            self._wait(lambda: self.caught_up(marks, ("validator",)), timeout)
            marks[self.names.valid] = self.last_id(self.names.valid)
        self._wait(lambda: self.caught_up(marks, services), timeout - (time.monotonic() - began))
        return time.monotonic() - began

    def quiescent(self) -> bool:
        """Nothing unread and nothing pending in any group (upstream checked first)."""
        for service in STAGE_GROUPS:
            state = self.group(service)
            end = self.last_id(self.stream_of(service))
            if state is None or state.pending or state.last_delivered < end:
                return False
        return True

    def wait_quiescent(self, timeout: float = 90.0) -> float:
        """Wait for quiescence (stop the producers first); seconds taken."""
        began = time.monotonic()
        self._wait(self.quiescent, timeout)
        return time.monotonic() - began

    def pending(self) -> dict[str, int]:
        """Pending entries per group."""
        return {
            group: int(self.client.xpending(stream, group)["pending"])
            for stream, group in self.groups()
        }

    def wait_mid_batch(self, replica: Replica, timeout: float = 30.0) -> int:
        """Wait until the replica read new entries since now and holds some; how many.

        "New" matters: a restarted consumer holds its old pending entries before doing anything.
        """
        start = self.group(replica.service)
        since = start.last_delivered if start else (0, 0)
        found = 0

        def busy() -> bool:
            nonlocal found
            if not replica.alive:
                pytest.fail(f"{replica.name} exited\n{self.tails()}")
            state = self.group(replica.service)
            if state is None or state.last_delivered <= since:
                return False
            found = state.consumers.get(replica.name, 0)
            return found > 0

        wait_for(busy, timeout=timeout, interval=0.003)
        return found

    def _wait(self, predicate: Callable[[], bool], timeout: float) -> None:
        try:
            wait_for(predicate, timeout=max(timeout, 0.1), interval=0.05)
        except AssertionError:
            pytest.fail(
                f"not caught up in {timeout:.0f}s: pending {self.pending()}\n{self.tails()}"
            )

    def close(self) -> None:
        """Kill leftovers and close the client."""
        self.kill_all()
        self.client.close()

    def delete_keys(self, *namespaces: str) -> None:
        """Remove every key of these namespaces (test cleanup)."""
        for ns in namespaces:
            for pattern in Names(ns).key_patterns:
                keys = list(self.client.scan_iter(match=pattern, count=1000))
                for i in range(0, len(keys), 1000):
                    self.client.delete(*keys[i : i + 1000])


class PrivateRedis(RedisServer):
    """A redis-server of the test's own: AOF with ``appendfsync always``, crashable.

    Never the machine's shared Redis. `crash` SIGKILLs it (nothing acknowledged is lost: every
    write was fsynced before its reply); `start` again reloads the AOF on the same port.
    """

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir, appendonly=True)

    def crash(self) -> None:
        """SIGKILL it."""
        self.stop()


def base_env(redis_url: str, namespace: str, database_url: str, **extra: str) -> dict[str, str]:
    """The environment of every service process: this machine's, minus any RUNBUS_* of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNBUS_")}
    env |= {
        "RUNBUS_REDIS_URL": redis_url,
        "RUNBUS_NAMESPACE": namespace,
        "RUNBUS_DATABASE_URL": database_url,
        "RUNBUS_BLOCK_MS": "200",
        "RUNBUS_CLAIM_IDLE_MS": "5000",
        "RUNBUS_JANITOR_INTERVAL_S": "1",
        "RUNBUS_TRIM_INTERVAL_S": "1",
        "RUNBUS_HISTORY_RETRY_MAX_S": "1",
        "RUNBUS_LOG_LEVEL": "INFO",
        "RUNBUS_LOG_JSON": "true",
        "PYTHONUNBUFFERED": "1",
    }
    return env | extra
