"""Stories of the live coach worker: bursts, replays, announcements, poison entries, two workers
in one group, and a rebuild from the same events agreeing with the live result."""

from __future__ import annotations

import os
import random
from collections import defaultdict
from collections.abc import Callable
from typing import Any, cast

import orjson
import pytest
import redis.asyncio as aredis

from services.coach import logic
from services.coach.app import build_app
from services.coach.facts import Fact, merge
from services.coach.io import CoachStore
from services.coach.rebuild import rebuild
from shared.models import COACH_STAGES, RunEvent
from shared.settings import Settings
from shared.wire import parse_dead_letter
from tests.integration.coach.conftest import (
    Listener,
    RunningCoach,
    cached,
    document,
    eventually,
    publish,
    publish_bodies,
)
from tests.unit.coach.builders import event, state_of, success, wrap

pytestmark = pytest.mark.integration
BURST = int(os.environ.get("RUNBUS_COACH_BURST", "10000"))


def mixed_events(count: int, projects: tuple[int, ...] = (5,), seed: int = 7) -> list[RunEvent]:
    """A project's busy day: every coach stage changes its mind many times along the way."""
    rng = random.Random(seed)
    events: list[RunEvent] = []
    for i in range(count):
        project, t, kind = projects[i % len(projects)], i / 10, i % 8
        if kind == 0:  # two rows at a time: the gold-set title changes with nearly every one
            payload = {"target": "gold_set", "rows": 2}
            events.append(event("annotation_rows_promoted", t=t, project=project, payload=payload))
        elif kind == 1:
            payload = {"accepted": 100, "rejected": rng.randint(0, 150), "source": "s3://b/x"}
            events.append(event("dataset_import_run", t=t, project=project, payload=payload))
        elif kind == 2:
            events.append(event("training_runtime_error", t=t, project=project))
        elif kind == 3 and rng.random() < 0.3:
            events.append(success("training", t=t, project=project))
        elif kind == 4:
            payload = {"review_queue": rng.randint(0, 120)}
            events.append(event(stage="cleaning", t=t, project=project, payload=payload))
        elif kind == 5:
            clusters = [{"id": f"c{rng.randint(0, 9)}", "size": rng.randint(1, 60)}]
            payload = {"failure_clusters": clusters}
            events.append(event(stage="eval", t=t, project=project, payload=payload))
        else:  # ordinary progress: touches data and gold_set, changes nothing
            events.append(event("annotation_label_submitted", t=t, project=project))
    return events


def expected_suggestions(events: list[RunEvent], project: int) -> dict[str, bytes]:
    """What every stage must say after `events`, computed by the pure functions alone."""
    state = state_of(e for e in events if e.project_id == project)
    return {s: logic.canonical(logic.suggest(s, state)) for s in COACH_STAGES}


def changes_event_by_event(events: list[RunEvent], stage: str) -> int:
    """How often `stage`'s suggestions change if recomputed after every single event."""
    state: dict[str, Fact] = {}
    last, changes = logic.digest([]), 0
    for ev in events:
        merge(state, logic.facts_from_envelope(wrap(ev)))
        now = logic.digest(logic.suggest(stage, state))
        changes += now != last
        last = now
    return changes


async def cache_snapshot(client: aredis.Redis, settings: Settings, project: int) -> dict[str, Any]:
    """Raw cached bytes of every stage of a project."""
    keys = [settings.names.coach_key(project, s) for s in COACH_STAGES]
    return dict(zip(COACH_STAGES, await client.mget(keys), strict=True))


async def cached_canonical(
    client: aredis.Redis, settings: Settings, project: int
) -> dict[str, bytes]:
    return {s: logic.canonical(await cached(client, settings, project, s)) for s in COACH_STAGES}


async def test_a_burst_writes_each_stage_at_most_once_per_batch_and_versions_only_rise(
    settings: Settings,
    async_client: aredis.Redis,
    start_coach: Callable[..., RunningCoach],
    listener: Listener,
) -> None:
    # given 10,000 events of one project already waiting on the valid stream
    events = mixed_events(BURST)
    await publish(async_client, settings, events)
    # when one coach worker handles them
    coach = start_coach()
    await coach.handled(BURST)
    announced = await listener.drain()
    worker = await coach.finish()
    # then every (project, stage) was written at most once per batch ...
    by_stage: dict[str, list[int]] = defaultdict(list)
    for note in announced:
        assert note["project_id"] == 5
        by_stage[note["stage"]].append(note["version"])
    assert coach.stats.max_writes_per_key == 1
    assert set(by_stage) == set(COACH_STAGES)
    for stage, versions in by_stage.items():
        assert len(versions) <= coach.stats.batches, (stage, len(versions), coach.stats.batches)
        # ... and the announced versions only rise, one step per change
        assert versions == list(range(1, len(versions) + 1)), stage
        doc = await document(async_client, settings, 5, stage)
        assert doc is not None and doc.version == versions[-1]
    # and writing per event instead of per batch would have shown: data changes hundreds of times
    assert changes_event_by_event(events, "data") > 10 * coach.stats.batches
    assert worker.entries == BURST
    # and the cache equals what the pure rules say about the whole burst
    assert await cached_canonical(async_client, settings, 5) == expected_suggestions(events, 5)


async def test_replaying_the_same_events_leaves_the_cache_unchanged(
    settings: Settings,
    async_client: aredis.Redis,
    start_coach: Callable[..., RunningCoach],
    listener: Listener,
) -> None:
    # given 2,000 events handled
    events = mixed_events(2000, projects=(5, 6))
    coach = start_coach()
    await publish(async_client, settings, events)
    await coach.handled(len(events))
    before = {p: await cache_snapshot(async_client, settings, p) for p in (5, 6)}
    announced = len(await listener.drain())
    # when the very same events arrive again, twice, in another order
    replay = list(events) * 2
    random.Random(3).shuffle(replay)
    await publish(async_client, settings, replay)
    await coach.handled(3 * len(events))
    # then not one byte of the cache changed, and nothing was announced
    assert {p: await cache_snapshot(async_client, settings, p) for p in (5, 6)} == before
    assert len(await listener.drain()) == announced
    assert coach.stats.written == announced


async def test_a_change_is_announced_to_subscribers(
    settings: Settings,
    async_client: aredis.Redis,
    start_coach: Callable[..., RunningCoach],
    listener: Listener,
) -> None:
    # given a dashboard subscribed to the change channel, and a running coach
    start_coach()
    # when a training run runs out of memory
    await publish(async_client, settings, [event("training_oom", t=1, project=12)])

    async def training_announced() -> bool:
        notes = await listener.drain()
        return any(n["stage"] == "training" for n in notes)

    # then the dashboard hears {project_id, stage, version} and can read that version
    await eventually(training_announced, what="training announcement")
    note = next(n for n in listener.seen if n["stage"] == "training")
    assert note == {"project_id": 12, "stage": "training", "version": 1}
    doc = await document(async_client, settings, 12, "training")
    assert doc is not None and doc.version == 1
    assert doc.suggestions[0].title == "Training ran out of GPU memory"
    assert doc.source_id is not None and doc.taxonomy_version == settings.taxonomy.version


async def test_malformed_envelopes_are_dead_lettered_and_the_rest_proceeds(
    settings: Settings, async_client: aredis.Redis, start_coach: Callable[..., RunningCoach]
) -> None:
    # given two entries that are not envelopes among good ones
    coach = start_coach()
    good = [event("training_oom", t=1, project=8)]
    await publish_bodies(async_client, settings, [b"not json", b'{"event_id": "x"}'])
    await publish(async_client, settings, good)
    await coach.handled(3)
    # then both are on the dead-letter stream with the coach's code, and nothing is pending
    rows = await async_client.xrange(settings.names.dead)
    letters = [parse_dead_letter(cast("dict[bytes, bytes]", fields)) for _, fields in rows or []]
    assert sorted(lt.original for lt in letters) == sorted([b"not json", b'{"event_id": "x"}'])
    assert {tuple(lt.errors) for lt in letters} == {(logic.MALFORMED,)}
    assert {lt.stage for lt in letters} == {"coach"}
    pending = await async_client.xpending(settings.names.valid, "coach")
    assert pending["pending"] == 0
    assert await cached(async_client, settings, 8, "training")


async def test_two_workers_in_one_group_agree_with_the_rules_and_versions_only_rise(
    settings: Settings,
    async_client: aredis.Redis,
    start_coach: Callable[..., RunningCoach],
    listener: Listener,
) -> None:
    # given two coach consumers in the same group, small batches so they interleave
    settings = settings.model_copy(update={"batch_size": 100})
    events = mixed_events(4000, projects=(5, 6, 7))
    await publish(async_client, settings, events)
    first, second = start_coach("coach-a"), start_coach("coach-b")

    async def all_handled() -> bool:
        return first.stats.entries + second.stats.entries >= len(events)

    await eventually(all_handled, timeout=60, what="both workers done")
    # then the announced versions of every (project, stage) rose one step at a time
    versions: dict[tuple[int, str], list[int]] = defaultdict(list)
    for note in await listener.drain():
        versions[(note["project_id"], note["stage"])].append(note["version"])
    for key, seq in versions.items():
        assert seq == list(range(1, len(seq) + 1)), key
    # and the final cache is exactly what the rules say, whoever handled which event
    for project in (5, 6, 7):
        assert await cached_canonical(async_client, settings, project) == expected_suggestions(
            events, project
        )
    assert first.stats.entries > 0 and second.stats.entries > 0


async def _wipe_coach(client: aredis.Redis, settings: Settings, projects: tuple[int, ...]) -> None:
    names = settings.names
    keys = [names.coach_projects]
    for p in projects:
        keys += [names.coach_state(p), names.coach_meta(p)]
        keys += [names.coach_key(p, s) for s in COACH_STAGES]
    await client.delete(*keys)


async def test_rebuild_from_the_same_events_in_another_order_equals_live(
    settings: Settings, async_client: aredis.Redis, start_coach: Callable[..., RunningCoach]
) -> None:
    projects = (5, 6)
    events = mixed_events(3000, projects=projects, seed=11)
    # given the live worker's cache after the events
    coach = start_coach()
    await publish(async_client, settings, events)
    await coach.handled(len(events))
    await coach.finish()
    live = {p: await cached_canonical(async_client, settings, p) for p in projects}
    # when the coach's keys are lost and rebuilt from the events alone, in another order
    await _wipe_coach(async_client, settings, projects)
    shuffled = [wrap(e) for e in events]
    random.Random(5).shuffle(shuffled)
    store = CoachStore(async_client, settings.names)
    report = await rebuild(store, settings.taxonomy.version, shuffled, flush_facts=500)
    # then every stage says exactly what the live worker said
    assert report.projects == set(projects) and report.events == len(events)
    for p in projects:
        assert await cached_canonical(async_client, settings, p) == live[p]
    # and a second rebuild changes nothing: no version moves
    before = {p: await cache_snapshot(async_client, settings, p) for p in projects}
    again = await rebuild(store, settings.taxonomy.version, reversed(shuffled))
    assert again.stats.written == 0 and again.stats.unchanged == len(projects) * 5
    assert {p: await cache_snapshot(async_client, settings, p) for p in projects} == before


async def test_rebuild_of_one_project_leaves_the_others_alone(
    settings: Settings, async_client: aredis.Redis
) -> None:
    events = [event("training_oom", t=1, project=1), event("training_oom", t=1, project=2)]
    store = CoachStore(async_client, settings.names)
    report = await rebuild(store, "tx", [wrap(e) for e in events], project_id=2)
    assert report.projects == {2}
    assert await document(async_client, settings, 1, "training") is None
    doc = await document(async_client, settings, 2, "training")
    assert doc is not None and doc.source_id is None
    assert orjson.loads(doc.model_dump_json())["suggestions"][0]["severity"] == "critical"


async def test_the_faststream_app_starts_the_worker_and_drains_on_stop(
    settings: Settings, async_client: aredis.Redis
) -> None:
    # given events waiting on the valid stream and the coach as a FastStream app
    events = mixed_events(300, projects=(4,))
    await publish(async_client, settings, events)
    app = build_app(settings)
    # when the app starts, runs until the cache is complete, and stops
    await app.start()
    try:

        async def complete() -> bool:
            return await cached_canonical(async_client, settings, 4) == expected_suggestions(
                events, 4
            )

        await eventually(complete, what="cache complete")
    finally:
        await app.stop()
    # then every entry was acknowledged by the coach group
    pending = await async_client.xpending(settings.names.valid, "coach")
    assert pending["pending"] == 0
    groups = {g["name"]: g for g in await async_client.xinfo_groups(settings.names.valid)}
    assert groups[b"coach"]["lag"] == 0
