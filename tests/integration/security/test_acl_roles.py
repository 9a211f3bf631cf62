"""Each ACL role can do its job against a real Redis, and is refused everything else.

Every test runs against a private redis-server loaded with the rendered ACL file; every client
logs in with ``redis://<role>:<percent-encoded password>@127.0.0.1:<port>/0``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import redis
import redis.asyncio as aredis
from redis.exceptions import AuthenticationError, NoPermissionError, ResponseError

from services.security.acl import ADMIN, ROLE_NAMES
from services.validator.app import run_validator
from shared.connections import async_redis
from shared.consumer import BatchContext, Entry, StreamWorker
from shared.names import COACH_GROUP, PERSISTER_GROUP, Names
from shared.producer import BestEffortProducer, Producer, SyncProducer
from tests.conftest import wait_for
from tests.integration.security.conftest import AclServer

pytestmark = pytest.mark.integration
N = Names("runbus")


def event(n: int, **extra: object) -> dict[str, object]:
    """A valid BrewSLM event."""
    doc: dict[str, object] = {
        "project_id": 7,
        "run_id": f"exp-{n}",
        "stage": "training",
        "severity": "info",
        "summary": f"step {n}",
        "ts": datetime.now(UTC).isoformat(),
    }
    return doc | extra


def refused(call: Callable[[], object]) -> None:
    """The call is refused by the ACL (NOPERM), not by anything else."""
    with pytest.raises(NoPermissionError):
        call()


def test_the_default_user_is_off_and_wrong_passwords_are_refused(acl_server: AclServer) -> None:
    # Given a server loaded with the ACL file
    anonymous = redis.Redis(port=acl_server.port)
    wrong = redis.Redis(port=acl_server.port, username="producer", password="not-it")
    # Then an unauthenticated client can do nothing, and a wrong password does not log in
    with pytest.raises(AuthenticationError):
        anonymous.ping()
    with pytest.raises(AuthenticationError):
        wrong.ping()
    # And every role logs in with its own password, given in the URL
    for role in (ADMIN, *ROLE_NAMES):
        client = acl_server.client(role)
        assert client.ping() is True
        client.close()


def test_producer_publishes_and_is_refused_everything_else(acl_server: AclServer) -> None:
    # Given the producer client logged in as `producer`
    client = acl_server.client("producer")
    producer = SyncProducer(client, N)
    # When it publishes
    ids = producer.publish_many([event(1), event(2)])
    # Then the entries are on the incoming stream
    admin = acl_server.client(ADMIN)
    assert [i.decode() for i, _ in admin.xrange(N.events)] == ids
    # And it can neither read, nor write anywhere else, nor administer
    refused(lambda: client.xrange(N.events))
    refused(lambda: client.xlen(N.events))
    refused(lambda: client.xreadgroup("g", "c", {N.events: ">"}))
    refused(lambda: client.xadd(N.valid, {"__data__": "{}"}))
    refused(lambda: client.xadd(N.dead, {"__data__": "{}"}))
    refused(lambda: client.xadd("other", {"a": "b"}))
    refused(lambda: client.delete(N.events))
    refused(lambda: client.xtrim(N.events, maxlen=0))
    refused(lambda: client.get(N.coach_key(7, "data")))
    refused(lambda: client.publish(N.coach_changes, "x"))
    refused(lambda: client.flushall())
    refused(lambda: client.config_get("*"))
    refused(lambda: client.keys("*"))
    assert admin.xlen(N.events) == 2


async def test_async_and_best_effort_producers_publish_as_producer(
    acl_server: AclServer,
) -> None:
    # Given the asyncio producer and the best-effort producer, both logged in as `producer`
    client = aredis.Redis.from_url(acl_server.url("producer"))
    first = await Producer(client, N).publish(event(1))
    best = BestEffortProducer(
        acl_server.url("producer"), N, acl_server.workdir / "spool.db", buffer_size=100
    )
    # When the best-effort producer publishes and flushes
    assert best.publish(event(2))
    assert best.close(timeout=10)
    await client.aclose()
    # Then both events are on the incoming stream, none spooled
    admin = acl_server.client(ADMIN)
    assert admin.xlen(N.events) == 2
    assert admin.xrange(N.events, count=1)[0][0].decode() == first
    assert best.counters.published == 1 and best.counters.spooled == 0


async def test_validator_runs_and_moves_entries_as_validator(acl_server: AclServer) -> None:
    # Given producers' entries: valid, invalid, and one with no __data__
    producer = SyncProducer(acl_server.client("producer"), N)
    producer.publish_many([event(n) for n in range(5)])
    acl_server.client("producer").xadd(N.events, {"junk": "1"})
    producer.publish_many([event(9, stage="nope")])
    admin = acl_server.client(ADMIN)
    # When the real validator runs as the `validator` user (Lua move, janitor and trim included)
    settings = acl_server.settings("validator")
    stop = asyncio.Event()
    task = asyncio.create_task(run_validator(settings, stop))
    await asyncio.to_thread(wait_for, lambda: admin.xlen(N.valid) == 5 and admin.xlen(N.dead) == 2)
    stop.set()
    worker = await task
    # Then every entry was moved and acknowledged, and nothing failed
    assert worker.entries == 7
    assert admin.xpending(N.events, "validator")["pending"] == 0
    # And its background jobs work under its permissions
    client = async_redis(settings)
    janitor = StreamWorker(
        client, settings, stream=N.events, group="validator", stage="validator", handler=_never
    )
    assert await janitor.claim_idle() == 0
    await janitor.trim()
    await client.aclose()


async def _never(batch: list[Entry], ctx: BatchContext) -> None:
    raise AssertionError("no entry expected")


def test_validator_is_refused_what_is_not_its_job(acl_server: AclServer) -> None:
    # Given the validator's credentials
    client = acl_server.client("validator")
    # Then it cannot write the incoming stream, read downstream, or touch the coach or ops keys
    refused(lambda: client.xadd(N.events, {"__data__": "{}"}))
    refused(lambda: client.xrange(N.valid))
    refused(lambda: client.xrange(N.dead))
    refused(lambda: client.xreadgroup("persister", "c", {N.valid: ">"}))
    refused(lambda: client.xdel(N.dead, "1-1"))
    refused(lambda: client.get(N.coach_key(7, "data")))
    refused(lambda: client.set(N.coach_key(7, "data"), "x"))
    refused(lambda: client.hgetall(N.coach_state(7)))
    refused(lambda: client.publish(N.coach_changes, "x"))
    refused(lambda: client.xadd(N.redrive_audit, {"a": "b"}))
    refused(lambda: client.xgroup_destroy(N.events, "validator"))
    refused(lambda: client.delete(N.events))
    # And a script cannot reach further than its caller (checked key by key inside Lua)
    denied = "(?i)can't run this command|can't access|no permissions"
    with pytest.raises(ResponseError, match=denied):
        client.eval("return redis.call('XRANGE', KEYS[2], '-', '+')", 2, N.events, N.valid)
    with pytest.raises(ResponseError, match=denied):
        client.eval("return redis.call('XADD', KEYS[1], '*', 'a', 'b')", 2, N.events, N.valid)


def _valid_entries(admin: redis.Redis, n: int) -> None:
    for i in range(n):
        admin.xadd(N.valid, {"__data__": f'{{"event_id":"e{i}"}}'})


async def _consume_as(server: AclServer, role: str, group: str) -> tuple[int, int]:
    """Run the stream machinery on the valid stream as `role`; dead-letter every other entry."""
    settings = server.settings(role)
    client = async_redis(settings)
    seen: list[str] = []

    async def handler(batch: list[Entry], ctx: BatchContext) -> None:
        keep = [e for i, e in enumerate(batch) if (len(seen) + i) % 2 == 0]
        reject = [e for e in batch if e not in keep]
        seen.extend(e.id for e in batch)
        await ctx.ack([e.id for e in keep])
        await ctx.dead_letter([(e, ["schema_violation:payload"], "test") for e in reject])

    worker = StreamWorker(
        client, settings, stream=N.valid, group=group, stage=role, handler=handler
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await asyncio.to_thread(wait_for, lambda: len(seen) >= 4)
    await worker.claim_idle()
    await worker.trim()
    stop.set()
    await task
    await client.aclose()
    return len(seen), worker.batches


@pytest.mark.parametrize(
    ("role", "group"), [("persister", PERSISTER_GROUP), ("coach", COACH_GROUP)]
)
async def test_valid_stream_consumers_ack_and_dead_letter(
    acl_server: AclServer, role: str, group: str
) -> None:
    # Given four entries on the valid stream
    admin = acl_server.client(ADMIN)
    _valid_entries(admin, 4)
    # When the consumer machinery runs as the role (ack half, dead-letter half)
    seen, _ = await _consume_as(acl_server, role, group)
    # Then all were handled, two are dead letters, none pending
    assert seen == 4
    assert admin.xlen(N.dead) == 2
    assert admin.xpending(N.valid, group)["pending"] == 0
    # And the role cannot write the streams it does not own
    client = acl_server.client(role)
    refused(lambda: client.xadd(N.valid, {"__data__": "{}"}))
    refused(lambda: client.xadd(N.events, {"__data__": "{}"}))
    refused(lambda: client.xrange(N.dead))
    refused(lambda: client.xdel(N.valid, "1-1"))


def test_coach_owns_its_cache_and_channel_only(acl_server: AclServer) -> None:
    # Given the coach's credentials
    coach = acl_server.client("coach")
    key, state = N.coach_key(7, "gold_set"), N.coach_state(7)
    # When it writes its cache in a transaction and announces the change
    with coach.pipeline(transaction=True) as pipe:
        pipe.set(key, '{"version": 1}').hset(state, "runs", "1").sadd(N.coach_projects, "7")
        pipe.execute()
    assert coach.publish(N.coach_changes, key) == 0
    # Then the documents are there
    assert coach.get(key) == b'{"version": 1}' and coach.hgetall(state) == {b"runs": b"1"}
    # And it cannot touch other keys, channels or the ops streams
    refused(lambda: coach.set("runbus:other", "x"))
    refused(lambda: coach.get("other:coach:7:data"))
    refused(lambda: coach.publish("runbus:other", "x"))
    refused(lambda: coach.xadd(N.redrive_audit, {"a": "b"}))
    refused(lambda: coach.flushdb())


def test_dashboard_reads_coach_documents_and_subscribes_only(acl_server: AclServer) -> None:
    # Given a coach document and a dashboard subscribed to the change channel
    coach, dashboard = acl_server.client("coach"), acl_server.client("dashboard")
    coach.set(N.coach_key(7, "data"), '{"version": 3}')
    pubsub = dashboard.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(N.coach_changes)
    admin = acl_server.client(ADMIN)
    wait_for(lambda: admin.pubsub_numsub(N.coach_changes)[0][1] == 1)
    # When the coach announces a change
    coach.publish(N.coach_changes, N.coach_key(7, "data"))
    # Then the dashboard hears it and reads the document
    message = None

    def heard() -> bool:
        nonlocal message
        message = pubsub.get_message(timeout=0.05)
        return message is not None

    wait_for(heard)
    assert message is not None and message["data"] == N.coach_key(7, "data").encode()
    assert dashboard.get(N.coach_key(7, "data")) == b'{"version": 3}'
    assert dashboard.mget([N.coach_key(7, "data"), N.coach_key(7, "eval")]) == [
        b'{"version": 3}',
        None,
    ]
    pubsub.close()
    # And it can write nothing, read nothing else, and publish nowhere
    refused(lambda: dashboard.set(N.coach_key(7, "data"), "x"))
    refused(lambda: dashboard.delete(N.coach_key(7, "data")))
    refused(lambda: dashboard.hgetall(N.coach_state(7)))
    refused(lambda: dashboard.xadd(N.events, {"__data__": "{}"}))
    refused(lambda: dashboard.xrange(N.dead))
    refused(lambda: dashboard.publish(N.coach_changes, "x"))
    other = dashboard.pubsub()
    with pytest.raises(NoPermissionError):
        other.subscribe("runbus:secrets")
        wait_for(lambda: other.get_message(timeout=0.05) is not None)


def test_ops_reads_and_redrives_dead_letters_and_reads_status(acl_server: AclServer) -> None:
    # Given a dead letter, and the ops credentials
    admin, ops = acl_server.client(ADMIN), acl_server.client("ops")
    dead_id = admin.xadd(N.dead, {"errors": '["malformed_json"]', "original": "{"})
    # Then ops reads it, the status of every stream, and writes the audit stream
    assert ops.xrange(N.dead)[0][0] == dead_id
    assert ops.xrevrange(N.dead, count=1)[0][0] == dead_id
    assert ops.xread({N.dead: "0"}, count=10)[0][1][0][0] == dead_id
    for stream in (N.events, N.valid, N.dead):
        admin.xgroup_create(stream, "g", id="0", mkstream=True)
        assert ops.xlen(stream) >= 0
        assert ops.xinfo_groups(stream)[0]["name"] == b"g"
        assert ops.xpending(stream, "g")["pending"] == 0
    ops.xadd(N.redrive_audit, {"action": "redrive"})
    # And redrives it atomically: delete from dead, append to the incoming stream
    moved = ops.eval(
        "if redis.call('XDEL', KEYS[1], ARGV[1]) == 1 then "
        "return redis.call('XADD', KEYS[2], '*', '__data__', ARGV[2]) end",
        2, N.dead, N.events, dead_id, "{}",
    )  # fmt: skip
    assert moved and admin.xlen(N.dead) == 0 and admin.xlen(N.events) == 1
    # But it cannot read events' content, write downstream, nor touch the coach keys
    refused(lambda: ops.xrange(N.events))
    refused(lambda: ops.xrange(N.valid))
    refused(lambda: ops.xadd(N.valid, {"__data__": "{}"}))
    refused(lambda: ops.xdel(N.events, moved))
    refused(lambda: ops.get(N.coach_key(7, "data")))
    refused(lambda: ops.xgroup_destroy(N.events, "g"))
    refused(lambda: ops.delete(N.dead))
