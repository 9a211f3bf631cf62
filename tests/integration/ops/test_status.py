"""`bus_status` on the real Redis: absent things are shown absent; groups, pending, consumers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
import redis.asyncio as aredis

from services.ops.models import StreamStatus
from services.ops.status import bus_status
from shared.names import ACTIONS_GROUP, COACH_GROUP, PERSISTER_GROUP, VALIDATOR_GROUP
from shared.settings import Settings
from tests.integration.ops.conftest import AddDead

pytestmark = pytest.mark.integration


def by_role(streams: list[StreamStatus]) -> dict[str, StreamStatus]:
    return {s.role: s for s in streams}


async def test_status_of_an_empty_namespace_shows_everything_absent(
    async_client: aredis.Redis, settings: Settings
) -> None:
    status = await bus_status(async_client, settings.names)
    streams = by_role(status.streams)
    assert list(streams) == ["events", "valid", "dead"]
    assert not any(s.exists for s in status.streams)
    assert [(g.name, g.exists) for g in streams["events"].groups] == [(VALIDATOR_GROUP, False)]
    assert [(g.name, g.exists) for g in streams["valid"].groups] == [
        (PERSISTER_GROUP, False),
        (COACH_GROUP, False),
    ]
    assert status.dead_letters == 0


async def test_status_shows_lengths_lag_pending_and_consumers(
    async_client: aredis.Redis, sync_client: redis.Redis, settings: Settings, add_dead: AddDead
) -> None:
    names = settings.names
    now = datetime.now(UTC)
    old = f"{int((now - timedelta(minutes=10)).timestamp() * 1000)}-0"
    # Given 5 incoming entries, the first ten minutes old; the validator group has read 3
    sync_client.xadd(names.events, {b"__data__": b"{}"}, id=old)
    for _ in range(4):
        sync_client.xadd(names.events, {b"__data__": b"{}"})
    sync_client.xgroup_create(names.events, VALIDATOR_GROUP, id="0")
    read: Any = sync_client.xreadgroup(VALIDATOR_GROUP, "v-1", {names.events: ">"}, count=3)
    ids: list[bytes] = [i for i, _ in read[0][1]]
    # of which it acknowledged the second only
    sync_client.xack(names.events, VALIDATOR_GROUP, ids[1])
    # and a second, idle consumer that never read
    sync_client.xgroup_createconsumer(names.events, VALIDATOR_GROUP, "v-2")
    # the valid stream has only the persister group (the coach's is missing) and one extra group
    sync_client.xgroup_create(names.valid, PERSISTER_GROUP, id="$", mkstream=True)
    sync_client.xgroup_create(names.valid, "adhoc", id="$")
    # and two dead letters
    add_dead(["malformed_json"])
    add_dead(["malformed_json"])
    # When the status is taken
    status = await bus_status(async_client, names, now=now)
    streams = by_role(status.streams)
    # Then
    events = streams["events"]
    assert (events.exists, events.length, events.first_id) == (True, 5, old)
    assert events.first_age_s == pytest.approx(600, abs=1)
    (validator,) = events.groups
    assert (validator.exists, validator.expected) == (True, True)
    assert (validator.lag, validator.pending, validator.entries_read) == (2, 2, 3)
    assert validator.last_delivered_id == ids[2].decode()
    assert validator.oldest_pending_id == old
    assert validator.oldest_pending_age_s == pytest.approx(600, abs=1)
    assert {c.name: c.pending for c in validator.consumers} == {"v-1": 2, "v-2": 0}
    assert all(c.idle_ms >= 0 for c in validator.consumers)
    valid = streams["valid"]
    assert (valid.exists, valid.length, valid.first_id) == (True, 0, None)
    assert [(g.name, g.exists, g.expected) for g in valid.groups] == [
        (PERSISTER_GROUP, True, True),
        (COACH_GROUP, False, True),
        ("adhoc", True, False),
    ]
    assert valid.groups[0].oldest_pending_id is None
    assert (streams["dead"].length, status.dead_letters) == (2, 2)


async def test_a_key_of_the_wrong_type_is_reported_not_raised(
    async_client: aredis.Redis, sync_client: redis.Redis, settings: Settings
) -> None:
    sync_client.set(settings.names.events, "oops")
    status = await bus_status(async_client, settings.names)
    events = by_role(status.streams)["events"]
    assert events.exists is False
    assert events.error is not None and "WRONGTYPE" in events.error


async def test_the_actions_stream_and_the_platform_group_are_in_the_status(
    async_client: aredis.Redis, sync_client: redis.Redis, settings: Settings
) -> None:
    names = settings.names
    # Given no action request yet: the actions stream and the platform's group are absent
    (empty,) = (await bus_status(async_client, names)).outlets
    assert (empty.role, empty.name, empty.exists) == ("actions", names.actions, False)
    assert [(g.name, g.exists, g.expected) for g in empty.groups] == [(ACTIONS_GROUP, False, True)]
    # Given three requests, of which the platform's group read two and acknowledged one
    for _ in range(3):
        sync_client.xadd(names.actions, {b"__data__": b"{}"})
    sync_client.xgroup_create(names.actions, ACTIONS_GROUP, id="0")
    read: Any = sync_client.xreadgroup(ACTIONS_GROUP, "p-1", {names.actions: ">"}, count=2)
    sync_client.xack(names.actions, ACTIONS_GROUP, read[0][1][0][0])
    # When the status is taken
    status = await bus_status(async_client, names)
    # Then the stream shows its length and the group its lag, pending entry and consumer
    (actions,) = status.outlets
    assert (actions.exists, actions.length, actions.partition) == (True, 3, 0)
    (platform,) = actions.groups
    assert (platform.name, platform.exists, platform.expected) == (ACTIONS_GROUP, True, True)
    assert (platform.lag, platform.pending) == (1, 1)
    assert [(c.name, c.pending) for c in platform.consumers] == [("p-1", 1)]
    # and the pipeline's own streams are unchanged (no outlet among them, nor in the totals)
    assert [s.role for s in status.streams] == ["events", "valid", "dead"]
    assert [t.role for t in status.totals] == ["events", "valid", "dead"]
