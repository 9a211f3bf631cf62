"""The health check of each stage watches the group its worker really reads as (real Redis).

Every stage bound in `services.runtime.stages` runs as it does under ``runbus run <stage>``;
the check, knowing only `PIPELINE`, must find each one's group on its stream.
"""

from __future__ import annotations

import asyncio

import pytest
import redis

from services.runtime.healthcheck import healthy, worker_view
from services.runtime.stages import STAGES
from shared.pipeline import PIPELINE
from shared.service import run_worker
from shared.settings import Settings
from tests.integration.api.helpers import eventually

pytestmark = pytest.mark.integration


def groups_on(client: redis.Redis, stream: str) -> set[str]:
    """Names of the groups reading `stream` (none when it does not exist)."""
    try:
        return {g["name"].decode() for g in client.xinfo_groups(stream)}
    except redis.ResponseError:
        return set()


def every_group_exists(client: redis.Redis, settings: Settings) -> bool:
    """True once each declared stage's group exists on the stream it reads."""
    names = settings.names
    return all(s.group in groups_on(client, names.stream(s.reads)) for s in PIPELINE.stages)


async def test_every_running_stage_is_found_healthy_where_it_reads(
    settings: Settings, sync_client: redis.Redis
) -> None:
    for stage in STAGES:  # none runs yet: no group, not healthy
        assert not await healthy(settings, stage, 30)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(run_worker(spec(), settings, stop)) for spec in STAGES.values()]
    try:
        await eventually(lambda: every_group_exists(sync_client, settings))
        for stage in PIPELINE.stage_names:
            assert (await worker_view(settings, stage)).group_exists
            assert await healthy(settings, stage, 30)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
