"""Story of `runbus demo`: after it, a new user sees history, dead letters with reasons, and
coach suggestions in every coach stage of every project (the real pipeline, in-process)."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import httpx
import pytest
import redis

from services.coach.app import run_coach
from services.persister.app import run_persister
from services.validator.app import run_validator
from shared.models import COACH_STAGES
from shared.settings import REPO_ROOT, Settings
from tests.integration.api.helpers import eventually

pytestmark = pytest.mark.integration


def run_demo_cli(settings: Settings, tmp_path: Path, *args: str) -> str:
    """`runbus demo ...` as a user runs it; its output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNBUS_")}
    env |= {"RUNBUS_NAMESPACE": settings.namespace, "RUNBUS_REDIS_URL": settings.redis_url,
            "RUNBUS_API_PORT": "8123"}  # fmt: skip
    result = subprocess.run(
        [str(REPO_ROOT / ".venv" / "bin" / "runbus"), "demo", *args],
        env=env, cwd=tmp_path, capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    return result.stdout.decode()


async def test_after_the_demo_every_coach_stage_speaks(
    http: httpx.AsyncClient, sync_client: redis.Redis, settings: Settings, tmp_path: Path
) -> None:
    # given a user runs the demo for two projects
    output = run_demo_cli(settings, tmp_path, "--projects", "2", "--size", "40", "--seed", "7",
                          "--invalid-ratio", "0.1")  # fmt: skip
    # then it says what it published and what to look at next
    assert "for projects 1, 2" in output
    assert "http://127.0.0.1:8123/api/projects/1/coach" in output and "runbus dlq" in output
    # when the pipeline runs
    stop = asyncio.Event()
    workers = [
        asyncio.create_task(run(settings, stop))
        for run in (run_validator, run_persister, run_coach)
    ]
    names = settings.names
    try:
        total = sync_client.xlen(names.events)
        await eventually(lambda: sync_client.xlen(names.valid) + sync_client.xlen(names.dead)
                         == total, timeout=30)  # fmt: skip

        async def coached() -> bool:
            for project in (1, 2):
                response = await http.get(f"/api/projects/{project}/coach")
                if response.status_code != 200:
                    return False
                stages = response.json()["stages"]
                if any(not stages.get(s, {}).get("suggestions") for s in COACH_STAGES):
                    return False
            return True

        for _ in range(300):
            if await coached():
                break
            await asyncio.sleep(0.05)
        # then every coach stage of both projects has a suggestion
        assert await coached()
    finally:
        stop.set()
        await asyncio.gather(*workers)
    # and the history holds the projects' timelines (the autopilot run with its children)
    events = (await http.get("/api/projects/1/events?limit=500")).json()["events"]
    assert len(events) >= 40
    autopilot = next(e["run_id"] for e in events if e["run_id"].startswith("autopilot-"))
    family = (await http.get(f"/api/runs/{autopilot}/events?children=true")).json()["events"]
    assert {e["dialect"] for e in family} == {"brewslm", "pulse"}
    assert any(e["parent_run_id"] == autopilot for e in family)
    # and the dead letters say why each was rejected
    stats = (await http.get("/api/dead-letters/stats")).json()
    families = {c["key"] for c in stats["by_family"]}
    assert {"invalid_reason_code", "malformed_json", "unknown_dialect"} <= families
