"""Redrive stories on the real Redis: provenance, at-most-once, dry run, ids, rate, audit."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import orjson
import pytest
import redis
import redis.asyncio as aredis

from services.ops.deadletters import (
    get_dead_letter,
    read_audit,
    redrive,
    select_dead_letters,
)
from services.ops.logic import TokenBucket
from services.ops.models import DeadLetterFilter
from services.validator.app import run_validator
from shared.settings import Settings
from shared.wire import (
    DATA_FIELD,
    ORIGIN_ID_FIELD,
    REDRIVEN_FROM_FIELD,
    derived_event_id,
    parse_dead_letter,
    parse_envelope,
)
from tests.integration.ops.conftest import AddDead, entries, xadd
from tests.unit.ops.builders import brewslm_body

pytestmark = pytest.mark.integration

CODES = DeadLetterFilter(reasons=("invalid_reason_code",))


async def test_redrive_moves_matching_dead_letters_back_with_their_provenance(
    async_client: aredis.Redis, sync_client: redis.Redis, settings: Settings, add_dead: AddDead
) -> None:
    # Given two dead letters for an unknown code and one malformed entry
    names = settings.names
    first = add_dead(["invalid_reason_code:x"], source_id="1700000000000-1")
    second = add_dead(["invalid_reason_code:y"], brewslm_body(run_id="exp-43"),
                      source_id="1700000000000-2")  # fmt: skip
    other = add_dead(["malformed_json"], b"{nope")
    # When the unknown-code ones are redriven
    result = await redrive(async_client, names, CODES, operator="alice")
    # Then both are on the incoming stream, original bytes unchanged, saying where they came from
    assert (result.matched, result.moved, result.gone, result.dry_run) == (2, 2, 0, False)
    assert result.target == names.events
    moved = entries(sync_client, names.events)
    assert [e[1] for e in moved] == [
        {DATA_FIELD: brewslm_body(), REDRIVEN_FROM_FIELD: first.encode(),
         ORIGIN_ID_FIELD: b"1700000000000-1"},
        {DATA_FIELD: brewslm_body(run_id="exp-43"), REDRIVEN_FROM_FIELD: second.encode(),
         ORIGIN_ID_FIELD: b"1700000000000-2"},
    ]  # fmt: skip
    assert result.moved_ids == {first: moved[0][0], second: moved[1][0]}
    # And they left the dead-letter stream; the other one stayed
    assert [e[0] for e in entries(sync_client, names.dead)] == [other]
    # And the audit says who moved what where
    (audit,) = await read_audit(async_client, names)
    assert (audit.action, audit.operator, audit.matched, audit.count) == ("redrive", "alice", 2, 2)
    assert (audit.target, audit.dry_run, audit.filter) == (
        names.events,
        False,
        {"reasons": ["invalid_reason_code"]},
    )


async def test_a_second_redrive_moves_nothing(
    async_client: aredis.Redis, sync_client: redis.Redis, settings: Settings, add_dead: AddDead
) -> None:
    # Given a dead letter that was redriven once
    entry = add_dead(["invalid_reason_code:x"])
    names = settings.names
    await redrive(async_client, names, CODES, operator="alice")
    # When the same filter, and the very same id, are redriven again
    again = await redrive(async_client, names, CODES, operator="alice")
    exact = await redrive(async_client, names, CODES, operator="bob", selected=[entry])
    # Then nothing more is delivered: the exact one is counted as already gone
    assert (again.matched, again.moved) == (0, 0)
    assert (exact.matched, exact.moved, exact.gone) == (1, 0, 1)
    assert sync_client.xlen(names.events) == 1
    assert [a.count for a in await read_audit(async_client, names)] == [0, 0, 1]


async def test_two_operators_at_once_move_each_dead_letter_once(
    async_client: aredis.Redis, sync_client: redis.Redis, settings: Settings, add_dead: AddDead
) -> None:
    # Given 300 dead letters both operators selected
    ids = [add_dead(["invalid_reason_code:x"], source_id=f"1700000000000-{i}") for i in range(300)]
    other = aredis.Redis.from_url(settings.redis_url)
    try:
        # When both redrive them at the same time, on two connections
        one, two = await asyncio.gather(
            redrive(async_client, settings.names, CODES, operator="a", selected=ids),
            redrive(other, settings.names, CODES, operator="b", selected=ids[::-1]),
        )
    finally:
        await other.aclose()
    # Then every dead letter was moved exactly once
    assert one.moved + two.moved == 300
    assert set(one.moved_ids).isdisjoint(two.moved_ids)
    origins = [f[ORIGIN_ID_FIELD] for _, f in entries(sync_client, settings.names.events)]
    assert sorted(origins) == sorted(f"1700000000000-{i}".encode() for i in range(300))
    assert sync_client.xlen(settings.names.dead) == 0


async def test_a_dry_run_lists_and_moves_nothing_but_is_audited(
    async_client: aredis.Redis, sync_client: redis.Redis, settings: Settings, add_dead: AddDead
) -> None:
    add_dead(["invalid_reason_code:x"])
    add_dead(["invalid_reason_code:y"])
    result = await redrive(async_client, settings.names, CODES, operator="alice", dry_run=True)
    assert (result.matched, result.moved, result.dry_run) == (2, 0, True)
    assert sync_client.xlen(settings.names.dead) == 2
    assert sync_client.exists(settings.names.events) == 0
    (audit,) = await read_audit(async_client, settings.names)
    assert (audit.dry_run, audit.matched, audit.count) == (True, 2, 0)


async def test_ids_select_exactly_those_dead_letters(
    async_client: aredis.Redis, sync_client: redis.Redis, settings: Settings, add_dead: AddDead
) -> None:
    # Given four dead letters
    a = add_dead(["invalid_reason_code:x"])
    add_dead(["invalid_reason_code:x"])
    c = add_dead(["malformed_json"])
    d = add_dead(["invalid_reason_code:x"])
    # When redriving by ids (one unknown id among them)
    flt = DeadLetterFilter(ids=(d, a, "1-0"))
    result = await redrive(async_client, settings.names, flt, operator="alice")
    # Then exactly those moved
    assert set(result.moved_ids) == {a, d}
    redriven = {
        f[REDRIVEN_FROM_FIELD].decode() for _, f in entries(sync_client, settings.names.events)
    }
    assert redriven == {a, d}
    # And ids combine with a reason: both must hold
    both = DeadLetterFilter(ids=(c,), reasons=("invalid_reason_code",))
    assert await select_dead_letters(async_client, settings.names, both) == []


async def test_the_rate_limit_spaces_the_moves(
    async_client: aredis.Redis, settings: Settings, add_dead: AddDead
) -> None:
    # Given 5 dead letters and a bucket of 10/s with a burst of 1, on a simulated clock
    for _ in range(5):
        add_dead(["invalid_reason_code:x"])
    now = [0.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    bucket = TokenBucket(10, capacity=1, clock=lambda: now[0], sleep=sleep)
    seen: list[int] = []
    # When redriven through it
    result = await redrive(
        async_client, settings.names, CODES, operator="a", bucket=bucket, progress=seen.append
    )
    # Then one move per token: four waits of a tenth of a second, progress one at a time
    assert result.moved == 5
    assert now[0] == pytest.approx(0.4)
    assert seen == [1, 1, 1, 1, 1]


async def test_redrive_refuses_to_loop_into_the_dead_stream_and_may_target_another(
    async_client: aredis.Redis, sync_client: redis.Redis, settings: Settings, add_dead: AddDead
) -> None:
    add_dead(["persist_rejected"], b'{"event_id":"e1"}', stage="persister",
             source_stream=settings.names.valid)  # fmt: skip
    flt = DeadLetterFilter(reasons=("persist_rejected",))
    with pytest.raises(ValueError):
        await redrive(async_client, settings.names, flt, operator="a", target=settings.names.dead)
    # A persister dead letter goes back to the valid stream when asked
    result = await redrive(
        async_client, settings.names, flt, operator="a", target=settings.names.valid
    )
    assert (result.moved, result.other_source) == (1, 0)
    assert entries(sync_client, settings.names.valid)[0][1][DATA_FIELD] == b'{"event_id":"e1"}'


async def test_huge_originals_move_in_several_calls(
    async_client: aredis.Redis, sync_client: redis.Redis, settings: Settings, add_dead: AddDead
) -> None:
    bodies = [bytes([65 + i]) * (3 * 1024 * 1024) for i in range(3)]
    for body in bodies:
        add_dead(["payload_too_large"], body)
    flt = DeadLetterFilter(reasons=("payload_too_large",))
    result = await redrive(async_client, settings.names, flt, operator="a")
    assert result.moved == 3
    assert [f[DATA_FIELD] for _, f in entries(sync_client, settings.names.events)] == bodies


async def _validate(settings: Settings, client: redis.Redis, routed: int) -> None:
    """Run the real validator until `routed` entries in all reached valid or dead."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_validator(settings, stop))
    deadline = time.monotonic() + 30
    while client.xlen(settings.names.valid) + client.xlen(settings.names.dead) < routed:
        assert not task.done() and time.monotonic() < deadline, "validator did not route"
        await asyncio.sleep(0.02)
    stop.set()
    await task


async def test_an_event_rejected_for_an_unknown_code_passes_after_the_taxonomy_gains_it(
    async_client: aredis.Redis, sync_client: redis.Redis, settings: Settings, tmp_path: Path
) -> None:
    names = settings.names
    # Given an event without an id, rejected by the validator for an unknown reason code
    body = brewslm_body(reason_code="train_gpu_on_fire")
    source = xadd(sync_client, names.events, {DATA_FIELD: body})
    await _validate(settings, sync_client, routed=1)
    ((dead_id, fields),) = entries(sync_client, names.dead)
    assert parse_dead_letter(fields).errors == ["invalid_reason_code:train_gpu_on_fire"]
    # and redriven once too early (the taxonomy still lacks it): rejected again
    await redrive(async_client, names, CODES, operator="ops")
    await _validate(settings, sync_client, routed=1)
    ((again_id, again),) = entries(sync_client, names.dead)
    assert parse_dead_letter(again).original_fields["origin_source_id"] == source.encode()
    # When the taxonomy gains the code by configuration, and the dead letter is redriven
    extra = tmp_path / "extra-codes.json"
    code = {"code": "train_gpu_on_fire", "stage": "training", "description": "too hot"}
    extra.write_text(json.dumps({"reason_codes": [code]}))
    fixed = Settings(**{**settings.model_dump(), "extra_codes_file": extra})
    first = await redrive(async_client, names, CODES, operator="ops")
    await _validate(fixed, sync_client, routed=1)
    # Then it is accepted, its event id derived from the entry id it first had
    assert first.moved == 1
    assert sync_client.xlen(names.dead) == 0
    ((_, valid),) = entries(sync_client, names.valid)
    envelope = parse_envelope(valid[DATA_FIELD])
    assert envelope.event_id == derived_event_id(source)
    assert orjson.loads(body)["reason_code"] == envelope.event["reason_code"]
    # And a second redrive of the same dead letter delivers nothing new
    ids = [dead_id, again_id]
    second = await redrive(async_client, names, CODES, operator="ops", selected=ids)
    assert (second.moved, second.gone) == (0, 2)
    assert await get_dead_letter(async_client, names, ids[1]) is None
    assert sync_client.xlen(names.valid) == 1
