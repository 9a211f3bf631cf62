"""The system as `make run` starts it (real processes), and a workload published with XADD."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis

from shared.settings import REPO_ROOT
from shared.wire import derived_event_id

RUNBUS = REPO_ROOT / ".venv" / "bin" / "runbus"
T0 = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)


class System:
    """`runbus run all --ensure-redis` in its own process, logs in a file."""

    def __init__(self, env: dict[str, str], workdir: Path, *args: str) -> None:
        self.env = env
        self.workdir = workdir
        self.args = args
        self.log = workdir / "runbus.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = int(env["RUNBUS_API_PORT"])
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=10)

    def start(self) -> None:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [str(RUNBUS), "run", "all", "--ensure-redis", *self.args],
                env=self.env,
                cwd=self.workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def ready(self) -> bool:
        """True once /readyz answers 200 (Redis and the database reachable)."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"runbus exited with {self.proc.returncode}:\n{self.output()}")
        try:
            return self.http.get("/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def children(self) -> dict[str, int]:
        """Latest pid of each child, from the supervisor's JSON log lines."""
        pids: dict[str, int] = {}
        for line in self.output().splitlines():
            if '"child_started"' in line:
                row = orjson.loads(line)
                pids[row["child"]] = row["pid"]
        return pids

    def stop(self, timeout: float = 75.0) -> int:
        """SIGTERM, as Ctrl-C or a container stop does; the exit code.

        The default covers the supervisor's worst case (30 s for the children's drain, 15 s
        for each node it started), so a hang shows up as a non-zero exit with its log.
        """
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(
                f"runbus did not stop in {timeout} s:\n{self.output()[-4000:]}"
            ) from exc

    def close(self) -> None:
        self.http.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # children follow (PR_SET_PDEATHSIG)
            self.proc.wait(10)


def system_env(
    namespace: str, redis_url: str, database_url: str, port: int, workdir: Path
) -> dict[str, str]:
    """The environment of the system under test: nothing inherited from RUNBUS_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNBUS_")}
    env.update(
        RUNBUS_NAMESPACE=namespace,
        RUNBUS_REDIS_URL=redis_url,
        RUNBUS_DATABASE_URL=database_url,
        RUNBUS_API_PORT=str(port),
        RUNBUS_API_HOST="127.0.0.1",
        RUNBUS_LOG_JSON="true",
        RUNBUS_SPOOL_PATH=str(workdir / "spool.db"),
        RUNBUS_CLAIM_IDLE_MS="2000",
        RUNBUS_JANITOR_INTERVAL_S="0.5",
        RUNBUS_BLOCK_MS="200",
    )
    return env


@dataclass
class Workload:
    """What was published, and what must come out."""

    bodies: list[bytes] = field(default_factory=list)
    valid: list[bool] = field(default_factory=list)
    event_ids: list[str | None] = field(default_factory=list)
    projects: set[int] = field(default_factory=set)
    runs: set[str] = field(default_factory=set)

    def add(self, doc: dict[str, Any] | bytes, valid: bool) -> None:
        self.bodies.append(doc if isinstance(doc, bytes) else orjson.dumps(doc))
        self.valid.append(valid)
        event_id = doc.get("event_id") if isinstance(doc, dict) else None
        self.event_ids.append(event_id if valid else None)
        if valid and isinstance(doc, dict):
            if isinstance(doc.get("project_id"), int):
                self.projects.add(doc["project_id"])
            else:
                self.runs.add(doc.get("parent_run_id") or doc["run_id"])


_counter = itertools.count()


def _brewslm(project: int, run: str, t: float, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "event_id": f"b-{next(_counter)}",
        "project_id": project,
        "run_id": run,
        "stage": "training",
        "severity": "info",
        "ts": (T0 + timedelta(seconds=t)).isoformat(),
    }
    doc.update(extra)
    return doc


def coach_story(w: Workload) -> None:
    """Project 1: an OOM never fixed, a gold set of 78 rows. Project 2: the OOM fixed by a later
    success published FIRST (order by event time), and a comfortable gold set of 320 rows."""
    oom = {"severity": "error", "reason_code": "training_oom", "payload": {"batch_size": 64}}
    w.add(_brewslm(1, "exp-1", 10, **oom), True)
    for rows in (40, 38):
        w.add(
            _brewslm(
                1,
                "annot-1",
                20,
                stage="ingestion",
                reason_code="annotation_rows_promoted",
                payload={"target": "gold_set", "rows": rows},
            ),
            True,
        )
    w.add(_brewslm(2, "exp-2", 90, payload={"status": "completed"}), True)
    w.add(_brewslm(2, "exp-2", 10, **oom), True)
    w.add(
        _brewslm(
            2,
            "annot-2",
            20,
            stage="ingestion",
            reason_code="annotation_rows_promoted",
            payload={"target": "gold_set", "rows": 320},
        ),
        True,
    )


INVALID: tuple[Callable[[int], dict[str, Any] | bytes], ...] = (
    lambda n: _brewslm(3, f"exp-bad-{n}", n, severity="error", reason_code=f"made_up_{n % 5}"),
    lambda n: _brewslm(3, f"exp-bad-{n}", n, stage="lunch"),
    lambda n: _brewslm(3, f"exp-bad-{n}", n, severity="critical"),
    lambda n: {
        "run_id": f"p-bad-{n}",
        "event_type": "run.exploded",
        "severity": "error",
        "created_at": T0.isoformat(),
    },
    lambda n: b'{"project_id": 3, "run_id": ',
    lambda n: {"data": "legacy-looking", "n": n},
)


def build_workload(
    projects: int = 6,
    per_project: int = 400,
    pulse_runs: int = 10,
    invalid: int = 300,
    duplicates: int = 20,
    anonymous: int = 50,
) -> Workload:
    """A few thousand entries: both dialects, nested runs, duplicates, invalid ones."""
    w = Workload()
    coach_story(w)
    stages = ("ingestion", "cleaning", "training", "eval", "export", "deployment")
    for p in range(1, projects + 1):
        for k in range(per_project):
            w.add(_brewslm(p, f"exp-{p}-{k % 10}", 100 + k, stage=stages[k % 6]), True)
    for r in range(pulse_runs):
        for k in range(30):
            w.add(
                {
                    "event_id": f"p-{next(_counter)}",
                    "run_id": f"pulse-{r}-child-{k % 3}",
                    "parent_run_id": f"pulse-{r}",
                    "event_type": "stage.completed",
                    "severity": "info",
                    "created_at": (T0 + timedelta(seconds=k)).isoformat(),
                },
                True,
            )
    for n in range(anonymous):  # no event_id: the validator derives one from the entry id
        doc = _brewslm(4, f"exp-anon-{n % 5}", 5000 + n)
        del doc["event_id"]
        w.add(doc, True)
    for n in range(duplicates):  # the same event twice: stored once
        w.bodies.append(w.bodies[10 + n])
        w.valid.append(True)
        w.event_ids.append(w.event_ids[10 + n])
    for n in range(invalid):
        w.add(INVALID[n % len(INVALID)](n), False)
    return w


def xadd_all(client: redis.Redis, stream: str, w: Workload) -> list[str]:
    """Publish with plain XADD in the documented wire format (one pipeline per 500)."""
    ids: list[str] = []
    for start in range(0, len(w.bodies), 500):
        with client.pipeline(transaction=False) as pipe:
            for body in w.bodies[start : start + 500]:
                pipe.xadd(stream, {b"__data__": body})
            ids += [i.decode() for i in pipe.execute()]
    # events without an id get one derived from their entry id
    w.event_ids = [
        eid if eid is not None or not ok else derived_event_id(entry_id)
        for eid, ok, entry_id in zip(w.event_ids, w.valid, ids, strict=True)
    ]
    return ids


def history_event_ids(http: httpx.Client, w: Workload) -> list[str]:
    """Every event id the API serves for the workload's projects and project-less runs."""
    found: list[str] = []
    paths = [f"/api/projects/{p}/events" for p in sorted(w.projects)]
    paths += [f"/api/runs/{r}/events?children=true" for r in sorted(w.runs)]
    for path in paths:
        cursor: str | None = None
        while True:
            sep = "&" if "?" in path else "?"
            url = f"{path}{sep}limit=5000" + (f"&cursor={cursor}" if cursor else "")
            response = http.get(url)
            if response.status_code == 404:
                break
            response.raise_for_status()
            page = response.json()
            found += [e["event_id"] for e in page["events"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
    return found


def dead_source_ids(client: redis.Redis, stream: str) -> list[str]:
    """Source entry ids of every dead letter."""
    return [f[b"source_id"].decode() for _, f in client.xrange(stream)]


def suggestion_titles(http: httpx.Client, project: int, stage: str) -> list[str]:
    """Titles the coach API serves for one stage ([] until the document exists)."""
    response = http.get(f"/api/projects/{project}/coach/{stage}")
    if response.status_code == 404:
        return []
    response.raise_for_status()
    return [s["title"] for s in response.json()["suggestions"]]


def poll(predicate: Callable[[], bool], timeout: float, interval: float = 0.25) -> None:
    """Poll until true; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)
