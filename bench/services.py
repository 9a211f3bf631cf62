"""The services under test, as separate processes, started exactly as `runbus run <service>`.

`ServiceGroup` spawns ``.venv/bin/runbus run <stage>`` for every stage of
`shared.pipeline.PIPELINE`, with the benchmark's namespace and database in the environment,
waits until every one has joined its consumer group, and stops them with SIGTERM (they drain),
then SIGKILL after a deadline. Children also die with the benchmark (PR_SET_PDEATHSIG), so an
interrupted run leaves no consumer behind.
`RssSampler` reads ``/proc/<pid>/status`` (VmRSS, RssAnon, VmHWM) in a background thread.
RssAnon is the part no file backs (heap, buffers): where an unbounded buffer would show. The
rest of VmRSS is mostly the SQLite file pages the persister maps (``mmap_size``), which the
kernel can drop at will.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import redis
from redis.cluster import RedisCluster
from redis.exceptions import ResponseError

from bench.env import REDIS_URL, RUNBUS, reap
from services.runtime.supervisor import die_with_parent
from shared.names import Names
from shared.pipeline import PIPELINE as DECLARED

#: The services under test: every stage, in start order (a name other bench modules import).
PIPELINE: tuple[str, ...] = DECLARED.stage_names


def _groups_of(names: Names, service: str) -> list[tuple[str, str]]:
    stage = DECLARED.stage(service)
    return [(stream, stage.group) for stream in names.streams(stage.reads)]


def _has_group(client: redis.Redis, stream: str, group: str) -> bool:
    # A worker creates its group once its resources are open (the persister: after migrating),
    # right before its first read; Redis 7.0 lists a consumer only once it read something.
    try:
        return any(g["name"].decode() == group for g in client.xinfo_groups(stream))
    except ResponseError:  # no stream yet
        return False


class ServiceGroup:
    """Every stage of one namespace, one process each."""

    def __init__(
        self,
        namespace: str,
        database_url: str,
        log_dir: Path,
        *,
        redis_url: str = REDIS_URL,
        partitions: int = 1,
        cluster: bool = False,
    ) -> None:
        self.names = Names(namespace, partitions)
        self.redis_url, self.cluster = redis_url, cluster
        self.env = dict(os.environ)
        self.env.update(
            RUNBUS_NAMESPACE=namespace,
            RUNBUS_DATABASE_URL=database_url,
            RUNBUS_REDIS_URL=redis_url,
            RUNBUS_PARTITIONS=str(partitions),
            RUNBUS_REDIS_CLUSTER=str(cluster).lower(),
            RUNBUS_LOG_LEVEL="WARNING",
            RUNBUS_LOG_JSON="true",
        )
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def pids(self) -> dict[str, int]:
        """Process id of each running service."""
        return {name: proc.pid for name, proc in self.procs.items()}

    def start(self, timeout: float = 90.0) -> float:
        """Spawn every service and wait until each has joined its group; seconds it took."""
        began = time.monotonic()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for service in PIPELINE:
            log = (self.log_dir / f"{self.names.namespace}-{service}.log").open("ab")
            self.procs[service] = subprocess.Popen(
                [str(RUNBUS), "run", service],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C reaches the benchmark, which stops them
                preexec_fn=die_with_parent,
            )
            log.close()
        self._wait_ready(began + timeout)
        return time.monotonic() - began

    def _wait_ready(self, deadline: float) -> None:
        client = self._client()
        try:
            waiting = set(PIPELINE)
            while waiting:
                self._check_alive()
                waiting = {s for s in waiting if not self._joined(client, s)}
                if time.monotonic() > deadline:
                    raise TimeoutError(f"services not started in time: {sorted(waiting)}")
                time.sleep(0.1)
        finally:
            client.close()

    def _client(self) -> redis.Redis:
        if self.cluster:
            return RedisCluster.from_url(self.redis_url)  # type: ignore[return-value]
        return redis.Redis.from_url(self.redis_url)

    def _joined(self, client: redis.Redis, service: str) -> bool:
        """The service's group exists on every partition's stream it reads."""
        return all(_has_group(client, *group) for group in _groups_of(self.names, service))

    def _check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}: {self.log_tail(name)}")

    def log_tail(self, service: str, lines: int = 15) -> str:
        """The end of a service's log (for error reports)."""
        path = self.log_dir / f"{self.names.namespace}-{service}.log"
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 20.0) -> dict[str, int | None]:
        """SIGTERM every service (they drain), SIGKILL what is left at the deadline."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        codes: dict[str, int | None] = {}
        for name, proc in self.procs.items():
            codes[name] = reap(proc, max(0.1, deadline - time.monotonic()))
        self.procs.clear()
        return codes

    def __enter__(self) -> ServiceGroup:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def status_kb(pid: int) -> dict[str, int]:
    """VmRSS, RssAnon and VmHWM (kB) of a process, from /proc (empty when it is gone)."""
    found: dict[str, int] = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return found
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "VmHWM"):
            found[key] = int(value.split()[0])
    return found


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float | None:
    """CPU time (user + system, all threads) a process has used so far, in seconds."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rpartition(")")[2].split()  # the command name may contain spaces
    return (int(fields[11]) + int(fields[12])) / _TICKS


@dataclass
class Sample:
    """One RSS reading of one service."""

    t: float
    phase: str
    service: str
    rss_kb: int
    anon_kb: int


@dataclass
class RssSampler:
    """Samples the RSS of some processes every `interval` seconds, tagged with a phase."""

    pids: dict[str, int]
    interval: float = 0.5
    phase: str = "start"
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> RssSampler:
        """Start sampling in a daemon thread."""
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        """Take one reading of every process now."""
        now = time.monotonic()
        for name, pid in self.pids.items():
            found = status_kb(pid)
            if "VmRSS" in found:
                rss, anon = found["VmRSS"], found.get("RssAnon", found["VmRSS"])
                self.samples.append(Sample(now, self.phase, name, rss, anon))

    def stop(self) -> None:
        """Stop sampling (one last reading first)."""
        self.sample()
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def peak_mb(
        self, service: str, phase: str | None = None, *, anon: bool = False
    ) -> float | None:
        """Largest RSS (or anonymous RSS) seen (MB) of a service, in one phase or overall."""
        values = [
            s.anon_kb if anon else s.rss_kb
            for s in self.samples
            if s.service == service and phase in (None, s.phase)
        ]
        return round(max(values) / 1024, 1) if values else None

    def series_mb(self, service: str, phase: str) -> list[tuple[float, float, float]]:
        """(seconds since the phase's first sample, RSS MB, anonymous RSS MB) in one phase."""
        rows = [s for s in self.samples if s.service == service and s.phase == phase]
        if not rows:
            return []
        t0 = rows[0].t
        return [
            (round(s.t - t0, 1), round(s.rss_kb / 1024, 1), round(s.anon_kb / 1024, 1))
            for s in rows
        ]
