"""Stories of the dead-letter filters on the real Redis: by rejecting stage, by source stream
role (every partition's), older than; a redrive or purge of a listing's filter acts on exactly
what the listing shows."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
import redis.asyncio as aredis

from services.ops.deadletters import (
    follow_dead_letters,
    list_dead_letters,
    match_dead_letters,
    purge,
    read_audit,
    redrive,
)
from services.ops.errors import InvalidSourceFilter, InvalidStageFilter
from services.ops.filters import selection_filter
from shared.names import Names
from shared.settings import Settings
from tests.integration.ops.conftest import AddDead, entries
from tests.unit.ops.builders import dead_fields

pytestmark = pytest.mark.integration

HOUR = timedelta(hours=1)


def seed_mixed(add_dead: AddDead, settings: Settings) -> dict[str, str]:
    """Dead letters of every stage, from both sources, two of them a day old."""
    names, day_ago = settings.names, datetime.now(UTC) - timedelta(days=1)
    return {
        "old_validator": add_dead(["malformed_json"], at=day_ago),
        "old_persister": add_dead(
            ["persist_rejected"], at=day_ago, stage="persister", source_stream=names.valid
        ),
        "validator": add_dead(["invalid_reason_code:x"]),
        "persister": add_dead(["persist_rejected"], stage="persister", source_stream=names.valid),
        "coach": add_dead(["coach_failed"], stage="coach", source_stream=names.valid),
    }


async def listed(client: aredis.Redis, names: Names, **filters: Any) -> list[str]:
    page = await list_dead_letters(client, names, limit=100, **filters)
    return [record.id for record in page.items]


async def test_listings_filter_by_stage_source_and_age(
    async_client: aredis.Redis, settings: Settings, add_dead: AddDead
) -> None:
    # Given dead letters of every stage and both sources, some a day old
    ids = seed_mixed(add_dead, settings)
    names = settings.names
    # When listed by stage, by source, by age and by all at once
    by_stage = await listed(async_client, names, stages=["persister"])
    by_source = await listed(async_client, names, sources=["valid"])
    old = await listed(async_client, names, before=HOUR)
    both = await listed(async_client, names, stages=["validator"], sources=["events"], before=HOUR)
    window = await listed(async_client, names, since=timedelta(days=2), before=HOUR)
    # Then each keeps only its matches, oldest first
    assert by_stage == [ids["old_persister"], ids["persister"]]
    assert by_source == [ids["old_persister"], ids["persister"], ids["coach"]]
    assert old == window == [ids["old_validator"], ids["old_persister"]]
    assert both == [ids["old_validator"]]


async def test_the_filters_hold_while_paging_both_ways(
    async_client: aredis.Redis, settings: Settings, add_dead: AddDead
) -> None:
    # Given six persister dead letters a day old among validator ones and newer ones
    names, day_ago = settings.names, datetime.now(UTC) - timedelta(days=1)
    old = []
    for i in range(6):
        add_dead(["malformed_json"], at=day_ago + timedelta(seconds=i))
        old.append(
            add_dead(
                ["persist_rejected"], at=day_ago + timedelta(seconds=i, milliseconds=500),
                stage="persister", source_stream=names.valid,
            )
        )  # fmt: skip
    add_dead(["persist_rejected"], stage="persister", source_stream=names.valid)
    flt: dict[str, Any] = {"stages": ["persister"], "before": HOUR, "limit": 2}
    # When paged backward from the newest, then forward from the oldest
    back: list[str] = []
    before_id = None
    for _ in range(5):
        page = await list_dead_letters(async_client, names, before_id=before_id, **flt)
        back = [r.id for r in page.items] + back
        if page.next_before is None:
            break
        before_id = page.next_before
    forward: list[str] = []
    after_id = "0-0"
    for _ in range(5):
        page = await list_dead_letters(async_client, names, after_id=after_id, **flt)
        forward += [r.id for r in page.items]
        if not page.items:
            break
        after_id = page.next_after or after_id
    # Then both walks give exactly the old persister letters, once each
    assert back == forward == old


async def test_a_redrive_of_the_listing_filter_moves_what_the_listing_shows(
    async_client: aredis.Redis, sync_client: redis.Redis, settings: Settings, add_dead: AddDead
) -> None:
    # Given a listing of persister dead letters from the valid stream, older than an hour
    ids = seed_mixed(add_dead, settings)
    names = settings.names
    shown = await listed(async_client, names, stages=["persister"], sources=["valid"], before=HOUR)
    # When a redrive is given the same filter
    flt = selection_filter(stages=["persister"], sources=["valid"], before=HOUR)
    preview = await match_dead_letters(async_client, names, flt)
    result = await redrive(async_client, names, flt, operator="alice")
    # Then it previewed and moved exactly those, and the audit record names the filter
    assert preview.ids == shown == [ids["old_persister"]]
    assert list(result.moved_ids) == shown
    remaining = [entry_id for entry_id, _ in entries(sync_client, names.dead)]
    assert ids["old_persister"] not in remaining and len(remaining) == 4
    (audit,) = await read_audit(async_client, names)
    assert audit.filter == {"stages": ["persister"], "sources": ["valid"], "before_s": 3600.0}


async def test_a_purge_by_stage_deletes_only_that_stage(
    async_client: aredis.Redis, sync_client: redis.Redis, settings: Settings, add_dead: AddDead
) -> None:
    ids = seed_mixed(add_dead, settings)
    flt = selection_filter(stages=["validator"], before=HOUR)
    result = await purge(async_client, settings.names, flt, operator="bob")
    assert (result.matched, result.deleted) == (1, 1)
    remaining = {entry_id for entry_id, _ in entries(sync_client, settings.names.dead)}
    assert remaining == set(ids.values()) - {ids["old_validator"]}


async def test_a_source_role_covers_every_partition(
    async_client: aredis.Redis, sync_client: redis.Redis, namespace: str
) -> None:
    # Given a bus of three partitions, each with a dead letter from its valid stream and one
    # from its incoming stream
    names = Names(namespace, partitions=3)
    valid: list[str] = []
    for partition in names.all_partitions:
        for source in (partition.events, partition.valid):
            fields = dead_fields(["malformed_json"], source_stream=source)
            entry: Any = sync_client.xadd(partition.dead, fields)  # type: ignore[arg-type]
            if source == partition.valid:
                valid.append(f"{partition.index}:{entry.decode()}")
    # When listed and selected by the source role "valid"
    shown = await listed(async_client, names, sources=["valid"])
    selected = await match_dead_letters(async_client, names, selection_filter(sources=["valid"]))
    # Then every partition's valid-stream dead letter is there, in merged time order
    assert sorted(shown) == sorted(valid) and shown == selected.ids


async def test_a_live_tail_keeps_only_the_filtered_stage(
    async_client: aredis.Redis, settings: Settings, add_dead: AddDead
) -> None:
    # Given a follow of persister dead letters
    names = settings.names
    seen: list[str] = []

    async def follow() -> None:
        async for record in follow_dead_letters(
            async_client, names, after_id=None, stages=["persister"], block_ms=50
        ):
            seen.append(record.id)
            return

    task = asyncio.create_task(follow())
    # When a validator and then a persister dead letter arrive
    add_dead(["malformed_json"])
    wanted = add_dead(["persist_rejected"], stage="persister", source_stream=names.valid)
    await asyncio.wait_for(task, timeout=10)
    # Then only the persister one was yielded
    assert seen == [wanted]


async def test_unknown_stages_and_sources_are_refused_before_any_read(
    async_client: aredis.Redis, settings: Settings
) -> None:
    with pytest.raises(InvalidStageFilter):
        await list_dead_letters(async_client, settings.names, stages=["api"])
    with pytest.raises(InvalidSourceFilter):
        await list_dead_letters(async_client, settings.names, sources=[settings.names.events])
    # and an age past the epoch is an empty page, not a Redis error
    page = await list_dead_letters(async_client, settings.names, before=timedelta(days=10**5))
    assert page.items == [] and page.next_before is None
