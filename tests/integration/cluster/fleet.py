"""Stage processes on the cluster: ``runbus run <stage>`` processes, one consumer slot each.

Each process is a `tests.faults.system.Replica` (started, SIGKILLed, restarted at will) with the
fault tests' environment (`base_env`) plus the cluster's: ``RUNBUS_REDIS_CLUSTER``,
``RUNBUS_PARTITIONS`` and its own ``RUNBUS_CONSUMER_SLOT`` (its consumer name is then the one
`Settings.consumer_for` gives). What a consumer holds is summed over every partition's group.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from redis.cluster import RedisCluster

from shared.names import Names
from shared.pipeline import PIPELINE
from shared.settings import Settings
from tests.conftest import wait_for
from tests.faults.system import RUNBUS, Replica, base_env


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Fleet:
    """The stage processes of one namespace on the cluster."""

    def __init__(self, workdir: Path, client: RedisCluster, names: Names, env: dict[str, str]):
        self.workdir = workdir
        self.client = client
        self.names = names
        self.env = env
        self.replicas: list[Replica] = []
        workdir.mkdir(parents=True, exist_ok=True)

    @classmethod
    def on_cluster(
        cls, workdir: Path, client: RedisCluster, settings: Settings, **extra: str
    ) -> Fleet:
        """A fleet whose processes get the settings' cluster, partitions, namespace, database."""
        env = base_env(
            settings.redis_url, settings.namespace, settings.database_url,
            RUNBUS_REDIS_CLUSTER="true", RUNBUS_PARTITIONS=str(settings.partitions), **extra,
        )  # fmt: skip
        return cls(workdir, client, settings.names, env)

    def start(self, service: str, slot: int) -> Replica:
        """Start ``runbus run <service>`` in consumer slot `slot`."""
        name = Settings(consumer_slot=slot, _env_file=None).consumer_for(service)
        env = self.env | {"RUNBUS_CONSUMER_SLOT": str(slot)}
        command = [str(RUNBUS), "run", service]
        replica = Replica(service, name, command, env, self.workdir / f"{name}.log")
        self.replicas.append(replica)
        replica.start()
        return replica

    def held(self, replica: Replica) -> int:
        """Entries delivered to the replica's consumer and not acknowledged, on every partition."""
        stage = PIPELINE.stage(replica.service)
        total = 0
        for stream in self.names.streams(stage.reads):
            try:
                summary = self.client.xpending(stream, stage.group)
            except redis.ResponseError:  # no group yet
                continue
            for consumer in summary.get("consumers") or []:
                if _text(consumer["name"]) == replica.name:
                    total += int(consumer["pending"])
        return total

    def reading(self, replica: Replica) -> bool:
        """The replica started a worker on every partition and its group exists on each.

        (Its consumer appears in a group only once it has been delivered something.)"""
        started = self._log_rows(replica, "worker_started")
        if len({row.get("partition") for row in started}) < len(self.names.all_partitions):
            return False
        stage = PIPELINE.stage(replica.service)
        for stream in self.names.streams(stage.reads):
            try:
                groups = self.client.xinfo_groups(stream)
            except redis.ResponseError:
                return False
            if stage.group not in {_text(g["name"]) for g in groups}:
                return False
        return True

    def kill_holding(self, replica: Replica, tries: int = 5, timeout: float = 20.0) -> int:
        """SIGKILL the replica while it holds entries and leave it dead; how many it held."""
        for _ in range(tries):
            wait_for(lambda: self._busy(replica), timeout=timeout, interval=0.003)
            replica.signal(signal.SIGKILL)
            held = self.held(replica)
            if held:
                replica.retired = True
                return held
            replica.start()  # it finished its batches just before the signal: again
        pytest.fail(f"{replica.name} never died holding entries")

    def _busy(self, replica: Replica) -> bool:
        if not replica.alive:
            pytest.fail(f"{replica.name} exited\n{self.tails()}")
        return self.held(replica) > 0

    def assert_alive(self) -> None:
        """Fail (with the log tails) if a replica that should run has exited."""
        dead = [r.name for r in self.replicas if r.proc and not r.alive and not r.retired]
        if dead:
            pytest.fail(f"replica(s) exited: {dead}\n{self.tails()}")

    def stop_all(self, timeout: float = 30.0) -> dict[str, int]:
        """SIGTERM every live replica (they drain) and wait; their exit codes."""
        live = [r for r in self.replicas if r.alive]
        for replica in live:
            assert replica.proc is not None
            replica.proc.send_signal(signal.SIGTERM)
        return {r.name: r.proc.wait(timeout) for r in live if r.proc is not None}

    def kill_all(self) -> None:
        """SIGKILL whatever still runs (teardown)."""
        for replica in self.replicas:
            if replica.alive:
                replica.signal(signal.SIGKILL)

    def batches(self, replica: Replica) -> int:
        """Batches the replica's last run handled, from its ``worker_stopped`` log lines (the
        count is the process's, over every partition)."""
        return max(
            (int(r["batches"]) for r in self._log_rows(replica, "worker_stopped")), default=0
        )

    def _log_rows(self, replica: Replica, event: str) -> list[dict[str, Any]]:
        """The JSON log lines `event` of the replica's last run."""
        if not replica.log_path.exists():
            return []
        text = replica.log_path.read_text(errors="replace")
        last_run = text.rsplit("--- start ", 1)[-1]
        return [row for row in _json_lines(last_run) if row.get("event") == event]

    def tails(self, lines: int = 15) -> str:
        """The last lines of every replica's log (for failure messages)."""
        out = []
        for replica in self.replicas:
            path = replica.log_path
            text = path.read_text(errors="replace") if path.exists() else ""
            out.append(f"== {replica.name}\n" + "\n".join(text.splitlines()[-lines:]))
        return "\n".join(out)


def _json_lines(text: str) -> list[dict[str, Any]]:
    rows = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                rows.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue
    return rows
