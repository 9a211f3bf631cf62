"""Upgrading from the old key format (``<ns>:coach:<p>:<stage>``, ``<ns>:coachstate:<p>``,
``<ns>:coachmeta:<p>``): one `runbus coach rebuild` moves every old key to its per-project-tagged
name, keeps what the old state knew and the documents' versions, and deletes the old keys."""

from __future__ import annotations

import pytest
import redis.asyncio as aredis

from services.coach.io import CoachStore
from services.coach.rebuild import rebuild
from shared.models import COACH_STAGES
from shared.settings import Settings
from tests.integration.coach.conftest import document
from tests.unit.coach.builders import event, wrap

pytestmark = pytest.mark.integration


def old_keys(namespace: str, project: int) -> dict[str, str]:
    """The old format's keys of a project, by what they were (spelled as the old coach did)."""
    keys = {stage: f"{namespace}:coach:{project}:{stage}" for stage in COACH_STAGES}
    return {**keys, "state": f"{namespace}:coachstate:{project}",
            "meta": f"{namespace}:coachmeta:{project}"}  # fmt: skip


async def as_old_format(client: aredis.Redis, settings: Settings, project: int) -> None:
    """Rename a project's coach keys to the old format's names (their contents never changed)."""
    names, old = settings.names, old_keys(settings.namespace, project)
    new = {stage: names.coach_key(project, stage) for stage in COACH_STAGES}
    new |= {"state": names.coach_state(project), "meta": names.coach_meta(project)}
    for what, key in new.items():
        await client.rename(key, old[what])


async def test_a_rebuild_moves_the_old_format_and_keeps_state_and_versions(
    settings: Settings, async_client: aredis.Redis
) -> None:
    store = CoachStore(async_client, settings.names)
    rows = {"target": "gold_set", "rows": 40}
    early = [event("training_oom", t=1), event("annotation_rows_promoted", t=2, payload=rows)]
    # given the old coach's keys for project 7 (its training document at version 1)
    await rebuild(store, "tx", [wrap(e) for e in early])
    await as_old_format(async_client, settings, 7)
    assert await document(async_client, settings, 7, "training") is None
    # when the upgrade's rebuild runs over a history that has lost the early events
    later = [event("annotation_rows_promoted", t=3, payload=rows), event("training_oom", t=4)]
    report = await rebuild(store, "tx", [wrap(e) for e in later])
    # then every old key moved (five documents, state, meta) and is gone
    assert report.migrated == 7
    assert await async_client.exists(*old_keys(settings.namespace, 7).values()) == 0
    # and the state kept the early rows: 40 + 40
    gold = await document(async_client, settings, 7, "gold_set")
    assert gold is not None and "80 rows" in gold.suggestions[0].title
    assert gold.version == 2  # the old document's version carried on
    training = await document(async_client, settings, 7, "training")
    assert training is not None and training.version == 1  # unchanged: not re-versioned
    # and a second rebuild finds nothing to move and changes nothing
    again = await rebuild(store, "tx", [wrap(e) for e in later])
    assert again.migrated == 0 and again.stats.written == 0


async def test_a_rebuild_of_one_project_moves_only_that_project(
    settings: Settings, async_client: aredis.Redis
) -> None:
    store = CoachStore(async_client, settings.names)
    # given old-format keys of projects 1 and 2
    await rebuild(store, "tx", [wrap(event("training_oom", t=1, project=p)) for p in (1, 2)])
    for project in (1, 2):
        await as_old_format(async_client, settings, project)
    # when project 2 alone is rebuilt (from an empty history)
    report = await rebuild(store, "tx", [], project_id=2)
    # then project 2 is served from its new keys, and project 1's old keys are left alone
    assert report.migrated == 7
    assert await document(async_client, settings, 2, "training") is not None
    assert await document(async_client, settings, 1, "training") is None
    assert await async_client.exists(*old_keys(settings.namespace, 1).values()) == 7
