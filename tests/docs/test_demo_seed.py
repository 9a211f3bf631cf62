"""`runbus demo --seed N` is reproducible, so the documentation can show its real output: the
same seed publishes the same runs and figures (in another namespace, at another time), and
another seed other ones."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson
import pytest
import redis

from shared.settings import REPO_ROOT
from tests.conftest import REDIS_URL

pytestmark = pytest.mark.integration


@pytest.fixture
def namespaces() -> Iterator[list[str]]:
    """Fresh namespaces on the machine's Redis, removed afterwards."""
    made: list[str] = []
    yield made
    client = redis.Redis.from_url(REDIS_URL)
    for ns in made:
        for key in client.scan_iter(match=f"*{ns}*", count=1000):
            client.delete(key)
    client.close()


def demo(namespaces: list[str], *args: str) -> tuple[str, list[dict[str, Any]]]:
    """Run `runbus demo ARGS` in a new namespace: what it printed and what it published."""
    ns = f"t{uuid.uuid4().hex[:10]}"
    namespaces.append(ns)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNBUS_")}
    env |= {"RUNBUS_NAMESPACE": ns, "RUNBUS_REDIS_URL": REDIS_URL}
    out = subprocess.run(
        [str(REPO_ROOT / ".venv" / "bin" / "runbus"), "demo", *args],
        env=env, capture_output=True, timeout=120, check=True,
    ).stdout.decode()  # fmt: skip
    client = redis.Redis.from_url(REDIS_URL)
    entries = client.xrange(f"{{{ns}}}:events")
    client.close()
    return out, [relative(fields[b"__data__"]) for _, fields in entries]


def relative(body: bytes) -> dict[str, Any]:
    """An entry's event without what must differ between runs: its random event id, and its
    absolute time (kept as the gap to a fixed reference, which a seed does fix)."""
    try:
        event: dict[str, Any] = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {"raw": body.decode("latin-1")}
    event.pop("event_id", None)
    for key in ("ts", "created_at"):
        if key in event and not event[key].startswith("2024-"):  # invalid ones are fixed
            event[key] = datetime.fromisoformat(event[key]).timestamp() % 86_400
    if "next_run_at" in event.get("details", {}):  # shifted with the rest: checked by the gaps
        event["details"]["next_run_at"] = "shifted"
    return event


def test_the_same_seed_publishes_the_same_runs_and_figures(namespaces: list[str]) -> None:
    # given the demo run twice with one seed, in two namespaces
    out_one, events_one = demo(namespaces, "--seed", "5", "--first-project", "1")
    out_two, events_two = demo(namespaces, "--seed", "5", "--first-project", "1")
    # then it printed the same ids, and published the same events with the same time gaps
    assert out_one == out_two
    assert "(seed 5)" in out_one and "autopilot-" in out_one
    gaps_one = [e.pop("ts", None) or e.pop("created_at", None) for e in events_one]
    gaps_two = [e.pop("ts", None) or e.pop("created_at", None) for e in events_two]
    assert events_one == events_two
    offsets = {round((a - b) % 86_400) for a, b in zip(gaps_one, gaps_two, strict=True)
               if isinstance(a, float) and isinstance(b, float)}  # fmt: skip
    assert len(offsets) <= 2  # one shift for the whole workload (two if a second ticked over)


def test_another_seed_creates_other_runs(namespaces: list[str]) -> None:
    out_five, _ = demo(namespaces, "--seed", "5")
    out_six, _ = demo(namespaces, "--seed", "6")
    runs = [line for line in out_five.splitlines() if line.startswith("  autopilot-")]
    assert len(runs) == 3
    assert not set(runs) & set(out_six.splitlines())


def test_the_latest_event_is_a_minute_old(namespaces: list[str]) -> None:
    # so a "since 2h" query after the demo finds the end of every story
    _, _ = demo(namespaces, "--seed", "3")
    client = redis.Redis.from_url(REDIS_URL)
    bodies = [f[b"__data__"] for _, f in client.xrange(f"{{{namespaces[0]}}}:events")]
    client.close()
    times = []
    for body in bodies:
        event = orjson.loads(body) if body.startswith(b'{"dialect"') else {}
        if "ts" in event or "created_at" in event:
            times.append(datetime.fromisoformat(event.get("ts") or event["created_at"]))
    age = datetime.now(times[0].tzinfo) - max(times)
    assert 0 < age.total_seconds() < 120
