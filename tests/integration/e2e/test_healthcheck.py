"""The container healthcheck: a worker is unhealthy when work waits and it does not take it."""

from __future__ import annotations

import asyncio

import pytest
import redis

from services.runtime.healthcheck import WorkerView, healthy, main, worker_view
from services.validator.app import run_validator
from shared.settings import Settings
from tests.conftest import free_port
from tests.integration.api.helpers import eventually

pytestmark = pytest.mark.integration


async def test_a_worker_is_judged_by_the_work_waiting_for_it(
    settings: Settings, sync_client: redis.Redis
) -> None:
    names = settings.names
    # given no validator ever started: its group does not exist, so it is not healthy
    assert not await healthy(settings, "validator", max_idle_s=30)
    # when a validator runs on a quiet stream, it is healthy
    stop = asyncio.Event()
    task = asyncio.create_task(run_validator(settings, stop))
    try:
        await eventually(lambda: bool(sync_client.exists(names.events)))
        assert await healthy(settings, "validator", max_idle_s=30)
        # and it stays healthy while it takes what arrives
        sync_client.xadd(names.events, {b"__data__": b"{}"})
        await eventually(lambda: sync_client.xlen(names.dead) == 1)
        view = await worker_view(settings, "validator")
        assert view.idle_s is not None and view.waiting_s is None
        assert await healthy(settings, "validator", max_idle_s=30)
    finally:
        stop.set()
        await task
    # when it is gone and an entry waits undelivered longer than allowed, it is unhealthy
    sync_client.xadd(names.events, {b"__data__": b"{}"})
    assert await healthy(settings, "validator", max_idle_s=30)  # a fresh entry: not yet
    await asyncio.sleep(0.3)  # let the entry (and the consumer's idleness) age past 0.1 s
    assert not await healthy(settings, "validator", max_idle_s=0.1)


def test_the_verdict_rule() -> None:
    assert not WorkerView(group_exists=False).healthy(30)
    assert WorkerView(True, idle_s=None, waiting_s=None).healthy(30)
    assert WorkerView(True, idle_s=500, waiting_s=10).healthy(30)
    assert WorkerView(True, idle_s=2, waiting_s=90).healthy(30)
    assert not WorkerView(True, idle_s=90, waiting_s=90).healthy(30)
    assert not WorkerView(True, idle_s=None, waiting_s=90).healthy(30)


async def test_the_api_check_needs_readyz_and_redis_down_is_unhealthy(settings: Settings) -> None:
    nobody = settings.model_copy(update={"api_port": free_port()})
    assert not await healthy(nobody, "api", max_idle_s=30)
    gone = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    assert not await healthy(gone, "coach", max_idle_s=30)


def test_the_command_exits_1_when_unhealthy(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RUNBUS_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    assert main(["coach"]) == 1
    assert capsys.readouterr().out.strip() == "coach: unhealthy"
