"""Stories of the dead-letter library on the real Redis: tail, follow, show, stats, purge."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import redis
import redis.asyncio as aredis

from services.ops.deadletters import (
    dead_letter_stats,
    follow_dead_letters,
    get_dead_letter,
    list_dead_letters,
    purge,
    read_audit,
    select_dead_letters,
)
from services.ops.logic import UNREADABLE
from services.ops.models import DeadLetterFilter, DeadLetterRecord
from shared.settings import Settings
from tests.conftest import RedisServer
from tests.integration.ops.conftest import AddDead
from tests.unit.ops.builders import brewslm_body, dead_fields

pytestmark = pytest.mark.integration


async def test_tail_gives_the_newest_matching_dead_letters_oldest_first(
    async_client: aredis.Redis, settings: Settings, add_dead: AddDead
) -> None:
    # Given dead letters of three families
    a = add_dead(["invalid_reason_code:foo"])
    add_dead(["malformed_json"], b"{nope")
    b = add_dead(["invalid_reason_code:bar", "missing_reason_code"])
    c = add_dead(["invalid_reason_code:foo"])
    add_dead(["persist_rejected"], stage="persister", source_stream=settings.names.valid)
    names = settings.names
    # When tailing the last two of a family
    page = await list_dead_letters(async_client, names, reasons=["invalid_reason_code"], limit=2)
    # Then the two newest of that family come, oldest first, with a cursor to older ones
    assert [r.id for r in page.items] == [b, c]
    assert page.next_before == b
    # and a full code matches only itself; several reasons match any
    page = await list_dead_letters(async_client, names, reasons=["invalid_reason_code:foo"])
    assert [r.id for r in page.items] == [a, c]
    assert page.next_before is None
    page = await list_dead_letters(
        async_client, names, reasons=["missing_reason_code", "persist_rejected"]
    )
    assert [r.errors[0] for r in page.items] == ["invalid_reason_code:bar", "persist_rejected"]


async def test_tail_since_leaves_out_older_dead_letters(
    async_client: aredis.Redis, settings: Settings, add_dead: AddDead
) -> None:
    # Given two dead letters from three hours ago and one from now
    now = datetime.now(UTC)
    add_dead(["malformed_json"], at=now - timedelta(hours=3))
    add_dead(["malformed_json"], at=now - timedelta(hours=3))
    recent = add_dead(["malformed_json"])
    # When tailing the last hour
    page = await list_dead_letters(async_client, settings.names, since=timedelta(hours=1))
    # Then only the recent one comes, and following would go on after it
    assert [r.id for r in page.items] == [recent]
    assert page.next_after == recent
    page = await list_dead_letters(async_client, settings.names, since=timedelta(hours=4))
    assert len(page.items) == 3


async def test_pages_go_backward_and_forward_without_gaps(
    async_client: aredis.Redis, settings: Settings, add_dead: AddDead
) -> None:
    # Given 7 dead letters, every other one matching
    ids = [add_dead(["malformed_json" if i % 2 else "invalid_reason_code:x"]) for i in range(14)]
    matching = ids[1::2]
    names = settings.names
    # When paging backward by 3
    seen: list[str] = []
    before: str | None = None
    while True:
        page = await list_dead_letters(
            async_client, names, reasons=["malformed_json"], limit=3, before_id=before
        )
        seen = [r.id for r in page.items] + seen
        if page.next_before is None:
            break
        before = page.next_before
    # Then every match came once, in order
    assert seen == matching
    # And paging forward from an id gives the ones after it
    page = await list_dead_letters(
        async_client, names, reasons=["malformed_json"], limit=2, after_id=matching[2]
    )
    assert [r.id for r in page.items] == matching[3:5]
    assert page.next_after == matching[4]
    page = await list_dead_letters(
        async_client, names, reasons=["malformed_json"], limit=5, after_id=matching[4]
    )
    assert [r.id for r in page.items] == matching[5:]
    assert page.next_after == ids[-1]  # scanned to the end: nothing older is looked at again


async def test_an_empty_or_absent_stream_gives_an_empty_page(
    async_client: aredis.Redis, settings: Settings, add_dead: AddDead
) -> None:
    page = await list_dead_letters(async_client, settings.names)
    assert page.items == []
    assert page.next_after is None
    # Given dead letters none of which match, the cursor still points at the stream's end
    last = add_dead(["malformed_json"])
    page = await list_dead_letters(async_client, settings.names, reasons=["persist_rejected"])
    assert page.items == []
    assert page.next_after == last


async def test_follow_sees_dead_letters_added_after_it_started(
    async_client: aredis.Redis, settings: Settings, add_dead: AddDead
) -> None:
    # Given a tail that has printed the existing dead letter
    add_dead(["malformed_json"])
    page = await list_dead_letters(async_client, settings.names)
    got: list[DeadLetterRecord] = []
    done = asyncio.Event()

    async def follow() -> None:
        async for record in follow_dead_letters(
            async_client,
            settings.names,
            after_id=page.next_after,
            reasons=["invalid_reason_code"],
            stop=done.is_set,
            block_ms=100,
        ):
            got.append(record)
            done.set()

    task = asyncio.create_task(follow())
    # When new dead letters arrive, one of another reason first
    add_dead(["persist_rejected"])
    new = add_dead(["invalid_reason_code:foo"])
    # Then the follower sees exactly the new matching one
    await asyncio.wait_for(task, timeout=10)
    assert [r.id for r in got] == [new]


async def test_show_gives_one_dead_letter_in_full(
    async_client: aredis.Redis, settings: Settings, add_dead: AddDead
) -> None:
    # Given a dead letter with a binary original field
    entry = add_dead(["invalid_reason_code:foo"], original_fields={"raw": b"\xff"})
    # When shown
    record = await get_dead_letter(async_client, settings.names, entry)
    # Then every field is there, the original intact
    assert record is not None
    assert record.id == entry
    assert record.original_bytes() == brewslm_body()
    assert record.original_fields_base64 == ["raw"]
    assert record.source_stream == settings.names.events
    # An unknown id is None; something that is not an id is refused
    assert await get_dead_letter(async_client, settings.names, "1-0") is None
    with pytest.raises(ValueError):
        await get_dead_letter(async_client, settings.names, "nope")


async def test_a_foreign_entry_on_the_dead_stream_is_shown_not_fatal(
    async_client: aredis.Redis, sync_client: redis.Redis, settings: Settings, add_dead: AddDead
) -> None:
    add_dead(["malformed_json"])
    sync_client.xadd(settings.names.dead, {b"something": b"else"})
    page = await list_dead_letters(async_client, settings.names)
    assert [r.readable for r in page.items] == [True, False]
    assert page.items[1].errors == [UNREADABLE]
    stats = await dead_letter_stats(async_client, settings.names)
    assert {c.key: c.count for c in stats.by_family} == {"malformed_json": 1, UNREADABLE: 1}


async def test_stats_count_by_reason_and_source_with_ages(
    async_client: aredis.Redis, settings: Settings, add_dead: AddDead
) -> None:
    # Given dead letters from two stages, one of them two hours old
    now = datetime.now(UTC)
    oldest = add_dead(["invalid_reason_code:a"], at=now - timedelta(hours=2))
    add_dead(["invalid_reason_code:a", "invalid_reason_code:b"])
    add_dead(["malformed_json"])
    newest = add_dead(["persist_rejected"], stage="persister", source_stream=settings.names.valid)
    # When counted (with a small chunk, so the scan goes on across chunks)
    stats = await dead_letter_stats(async_client, settings.names, now=now, chunk=2)
    # Then
    assert (stats.length, stats.scanned) == (4, 4)
    assert [(c.key, c.count) for c in stats.by_family] == [
        ("invalid_reason_code", 2),
        ("malformed_json", 1),
        ("persist_rejected", 1),
    ]
    assert {c.key: c.count for c in stats.by_code} == {
        "invalid_reason_code:a": 2,
        "invalid_reason_code:b": 1,
        "malformed_json": 1,
        "persist_rejected": 1,
    }
    assert {c.key: c.count for c in stats.by_stage} == {"validator": 3, "persister": 1}
    assert {c.key: c.count for c in stats.by_source_stream} == {
        settings.names.events: 3,
        settings.names.valid: 1,
    }
    assert (stats.oldest_id, stats.newest_id) == (oldest, newest)
    assert stats.oldest_age_s == pytest.approx(7200, abs=1)
    assert stats.newest_age_s is not None and stats.newest_age_s < 60


async def test_stats_of_an_absent_stream_are_zero(
    async_client: aredis.Redis, settings: Settings
) -> None:
    stats = await dead_letter_stats(async_client, settings.names)
    assert (stats.length, stats.scanned, stats.oldest_id, stats.by_code) == (0, 0, None, [])


async def test_purge_deletes_only_older_and_matching_dead_letters(
    async_client: aredis.Redis, settings: Settings, add_dead: AddDead
) -> None:
    # Given old and new dead letters of two reasons
    now = datetime.now(UTC)
    old_json = add_dead(["malformed_json"], at=now - timedelta(days=8))
    old_code = add_dead(["invalid_reason_code:x"], at=now - timedelta(days=8))
    new_json = add_dead(["malformed_json"])
    flt = DeadLetterFilter(reasons=("malformed_json",), before_s=timedelta(days=7).total_seconds())
    # When purging malformed_json older than 7 days
    result = await purge(async_client, settings.names, flt, operator="alice")
    # Then only the old malformed_json one is gone
    assert (result.matched, result.deleted) == (1, 1)
    left = await select_dead_letters(async_client, settings.names, DeadLetterFilter())
    assert [line.id for line in left] == [old_code, new_json]
    assert await get_dead_letter(async_client, settings.names, old_json) is None
    # And the audit says who purged what
    (audit,) = await read_audit(async_client, settings.names)
    assert (audit.action, audit.operator, audit.count, audit.matched) == ("purge", "alice", 1, 1)
    assert audit.filter == {"reasons": ["malformed_json"], "before_s": 604800.0}
    assert audit.id == result.audit_id
    # A purge without an age or ids is refused
    with pytest.raises(ValueError):
        await purge(async_client, settings.names, DeadLetterFilter(), operator="alice")


async def test_follow_goes_on_after_redis_restarts(
    redis_server: Callable[..., RedisServer], settings: Settings
) -> None:
    # Given a follower on a private Redis that has shown the one dead letter there
    server = redis_server()
    writer = redis.Redis(port=server.port)
    names = settings.names
    writer.xadd(names.dead, dead_fields(["malformed_json"]))  # type: ignore[arg-type]
    client = aredis.Redis.from_url(server.url)
    got: list[DeadLetterRecord] = []
    outages: list[Exception] = []
    done = asyncio.Event()

    async def follow() -> None:
        async for record in follow_dead_letters(
            client, names, after_id=None, stop=done.is_set, block_ms=100, on_outage=outages.append
        ):
            got.append(record)
            if len(got) == 2:
                done.set()

    async def until(predicate: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 15
        while not predicate():
            assert time.monotonic() < deadline, "condition not met in time"
            await asyncio.sleep(0.02)

    task = asyncio.create_task(follow())
    try:
        await until(lambda: len(got) == 1)
        # When Redis goes away and comes back (empty: no persistence), then a dead letter arrives
        server.stop()
        await until(lambda: bool(outages))
        server.start()
        new_id = writer.xadd(names.dead, dead_fields(["persist_rejected"]))  # type: ignore[arg-type]
        # Then the follower reconnected by itself and shows it
        await asyncio.wait_for(task, timeout=20)
    finally:
        done.set()
        await client.aclose()
        writer.close()
    assert got[1].id == new_id.decode()  # type: ignore[union-attr]
    assert got[1].errors == ["persist_rejected"]
