"""Stories about the coach's Redis scripts: the Lua merge agrees with the pure merge, and the
versioned cache write never lowers a version, never rewrites an unchanged result, never lets an
older state's result overwrite a newer one."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import redis.asyncio as aredis
import redis.exceptions

from services.coach import logic
from services.coach.facts import Fact, merge
from services.coach.io import CoachStore, StageResult
from shared.settings import Settings
from tests.integration.coach.conftest import Listener, document
from tests.unit.coach.builders import event, state_of

pytestmark = pytest.mark.integration
NOW = datetime(2026, 6, 1, tzinfo=UTC)
TX: dict[str, Any] = {"taxonomy_version": "tx", "now": NOW}


def _random_facts(rng: random.Random, count: int) -> list[Fact]:
    keys = ["training:oom", "project:active", "data:rows_landed", "eval:ok", "gold_set:rows:x"]
    # ids that differ in case and punctuation: a locale-aware compare would order them wrongly
    ids = ["a", "B", "b", "a.1", "a-1", "A_1", "z", "Z", "aa", "a:b"]
    facts = []
    for _ in range(count):
        key, ts, event_id = rng.choice(keys), rng.choice([5, 6, 7]), rng.choice(ids)
        # one event always yields the same fact, so the value follows from the stamp
        facts.append(Fact(key, ts, event_id, {"from": f"{ts}/{event_id}"}))
    return facts


async def test_lua_merge_equals_the_pure_merge(
    settings: Settings, async_client: aredis.Redis
) -> None:
    store = CoachStore(async_client, settings.names)
    rng = random.Random(1234)
    for project in range(25):
        # given random facts with many ties on time, merged in random chunks
        facts = _random_facts(rng, 40)
        expected: dict[str, Fact] = {}
        merge(expected, facts)
        cuts = sorted(rng.sample(range(1, len(facts)), 4))
        for lo, hi in zip([0, *cuts], [*cuts, len(facts)], strict=True):
            merged = await store.merge(project, facts[lo:hi])
        # then Redis holds exactly what the pure merge computes
        assert merged.state == expected


async def test_merge_reports_revision_changes_and_missing_documents(
    settings: Settings, async_client: aredis.Redis
) -> None:
    store = CoachStore(async_client, settings.names)
    facts = logic.facts_from_event(event("training_oom", t=1, project=3), "e-1")
    first = await store.merge(3, facts)
    assert (first.rev, first.changed) == (1, 2)
    assert first.missing == {"data", "cleaning", "gold_set", "training", "eval"}
    # the same facts again: nothing changes, the revision stays
    again = await store.merge(3, facts)
    assert (again.rev, again.changed, again.state) == (1, 0, first.state)
    assert await async_client.sismember(settings.names.coach_projects, "3")


async def test_unchanged_result_is_neither_rewritten_nor_announced(
    settings: Settings, async_client: aredis.Redis, listener: Listener
) -> None:
    store = CoachStore(async_client, settings.names)
    found = logic.suggest("training", state_of([event("training_oom", t=1)]))
    key = settings.names.coach_key(9, "training")
    # given a first write
    first = await store.write(
        StageResult(9, "training", 1, found, "1-0"), taxonomy_version="tx", now=NOW
    )
    assert (first.outcome, first.version) == ("written", 1)
    raw = await async_client.get(key)
    assert raw is not None
    # when the same suggestions are written from a newer state
    again = await store.write(
        StageResult(9, "training", 2, found, "2-0"), taxonomy_version="tx", now=datetime.now(UTC)
    )
    # then nothing moved: same version, same bytes, one announcement only
    assert (again.outcome, again.version) == ("unchanged", 1)
    assert await async_client.get(key) == raw
    assert await listener.drain() == [{"project_id": 9, "stage": "training", "version": 1}]
    doc = orjson.loads(raw)
    assert doc["version"] == 1 and doc["source_id"] == "1-0" and doc["taxonomy_version"] == "tx"


async def test_a_result_from_an_older_state_is_dropped(
    settings: Settings, async_client: aredis.Redis
) -> None:
    store = CoachStore(async_client, settings.names)
    newer = logic.suggest("training", state_of([event("training_oom", t=1)]))
    # given worker B wrote the result of state revision 5
    first = await store.write(StageResult(9, "training", 5, newer, "5-0"), **TX)
    assert first.outcome == "written"
    # when slow worker A writes what it computed from revision 4
    late = await store.write(StageResult(9, "training", 4, [], "4-0"), **TX)
    # then it is dropped and the newer result stays
    assert (late.outcome, late.version) == ("stale", 1)
    doc = await document(async_client, settings, 9, "training")
    assert doc is not None and len(doc.suggestions) == 1


async def test_versions_survive_lost_bookkeeping_and_lost_documents(
    settings: Settings, async_client: aredis.Redis
) -> None:
    store = CoachStore(async_client, settings.names)
    found = logic.suggest("training", state_of([event("training_oom", t=1)]))
    for rev in (1, 2, 3):
        await store.write(StageResult(9, "training", rev, found if rev % 2 else []), **TX)
    # given version 3, then the meta hash is lost
    await async_client.delete(settings.names.coach_meta(9))
    result = await store.write(StageResult(9, "training", 1, []), **TX)
    # then the version continues from the document's, it never restarts
    assert (result.outcome, result.version) == ("written", 4)
    # and a deleted document is written again, with a higher version, even if unchanged
    await async_client.delete(settings.names.coach_key(9, "training"))
    result = await store.write(StageResult(9, "training", 1, []), **TX)
    assert (result.outcome, result.version) == ("written", 5)


async def test_scripts_the_server_lost_are_loaded_and_run_again(
    settings: Settings, async_client: aredis.Redis
) -> None:
    store = CoachStore(async_client, settings.names)
    facts = logic.facts_from_event(event("training_oom", t=1, project=3), "e-1")
    found = logic.suggest("training", state_of([event("training_oom", t=1)]))
    # given scripts the server does not know (as after a restart or a failover)
    real = (store._merge.sha, store._write.sha)
    store._merge.sha = store._write.sha = "0" * 40
    # then each pipelined call meets NOSCRIPT, loads the script and runs once
    merged = await store.merge_many({3: facts, 4: facts})
    assert [(m.rev, m.changed) for m in merged.values()] == [(1, 2), (1, 2)]
    assert await async_client.smembers(settings.names.coach_projects) == {b"3", b"4"}
    results = [StageResult(p, "training", 1, found, "1-0") for p in (3, 4)]
    written = await store.write_many(results, **TX)
    assert [(w.outcome, w.version) for w in written] == [("written", 1), ("written", 1)]
    assert (store._merge.sha, store._write.sha) == real


async def test_an_error_reply_fails_the_batch_instead_of_passing_for_a_result(
    settings: Settings, async_client: aredis.Redis
) -> None:
    store = CoachStore(async_client, settings.names)
    facts = logic.facts_from_event(event("training_oom", t=1, project=3), "e-1")
    # given one project's state key holding a string (WRONGTYPE inside the script)
    await async_client.set(settings.names.coach_state(4), "x")
    # then the merge of the batch raises, though the other project's call succeeded
    with pytest.raises(redis.exceptions.ResponseError):
        await store.merge_many({3: facts, 4: facts})
    assert (await store.merge(3, facts)).changed == 0


async def test_one_call_per_project_answers_each_result_in_its_place(
    settings: Settings, async_client: aredis.Redis, listener: Listener
) -> None:
    store = CoachStore(async_client, settings.names)
    found = logic.suggest("training", state_of([event("training_oom", t=1)]))
    await store.write(StageResult(9, "training", 5, found, "5-0"), **TX)
    await store.write(StageResult(10, "data", 1, [], "1-0"), **TX)
    before = len(await listener.drain())
    # given results of two projects, interleaved, each with another fate
    results = [
        StageResult(9, "training", 4, [], "4-0"),  # older than what is cached: stale
        StageResult(10, "training", 1, found, "6-0"),  # new: written
        StageResult(9, "data", 6, [], "6-0"),  # new: written
        StageResult(10, "data", 2, [], "6-0"),  # the same list again: unchanged
        StageResult(9, "eval", 6, found, "6-0"),  # new: written
    ]
    written = await store.write_many(results, **TX)
    # then each answer is the one of its own result
    outcomes = [(w.outcome, w.version) for w in written]
    assert outcomes == [
        ("stale", 1),
        ("written", 1),
        ("written", 1),
        ("unchanged", 1),
        ("written", 1),
    ]
    changes = (await listener.drain())[before:]
    assert sorted((c["project_id"], c["stage"]) for c in changes) == [
        (9, "data"), (9, "eval"), (10, "training")
    ]  # fmt: skip
    doc = await document(async_client, settings, 9, "eval")
    assert doc is not None and doc.source_id == "6-0" and doc.suggestions == found
