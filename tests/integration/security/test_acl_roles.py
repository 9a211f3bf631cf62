"""Each ACL role can do its job against a real Redis, and is refused everything else.

Every test runs against a private redis-server loaded with the rendered ACL file; every client
logs in with ``redis://<role>:<percent-encoded password>@127.0.0.1:<port>/0``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio as aredis
from redis.exceptions import AuthenticationError, NoPermissionError, ResponseError

from services.coach.actions import recent_actions, request_action
from services.coach.app import run_coach
from services.coach.reads import get_project, known_projects
from services.history import open_store
from services.ops.deadletters import (
    dead_letter_stats,
    get_dead_letter,
    list_dead_letters,
    purge,
    read_audit,
    redrive,
)
from services.ops.models import DeadLetterFilter
from services.ops.status import bus_status
from services.persister.app import run_persister
from services.security.acl import ADMIN, ROLE_NAMES
from services.validator.app import run_validator
from shared.connections import async_redis
from shared.consumer import BatchContext, Entry, StreamWorker
from shared.metrics import read_stage_metrics
from shared.models import CoachDocument, NavigateAction, Suggestion
from shared.names import ACTIONS_GROUP, COACH_GROUP, PERSISTER_GROUP, Names
from shared.producer import BestEffortProducer, Producer, SyncProducer
from shared.wire import parse_action
from tests.conftest import wait_for
from tests.integration.security.conftest import AclServer, one_shot, rows

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
    anonymous = one_shot(acl_server.port)
    wrong = one_shot(acl_server.port, username="producer", password="not-it")
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
    assert [i.decode() for i, _ in rows(admin, N.events)] == ids
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
    assert rows(admin, N.events, count=1)[0][0].decode() == first
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
    denied = r"(?i)can't run this command|can't access|no permissions"
    with pytest.raises(ResponseError, match=denied):
        client.eval("return redis.call('XRANGE', KEYS[2], '-', '+')", 2, N.events, N.valid)
    with pytest.raises(ResponseError, match=denied):
        client.eval("return redis.call('XADD', KEYS[1], '*', 'a', 'b')", 2, N.events, N.valid)


async def test_pipeline_runs_end_to_end_with_one_user_per_stage(acl_server: AclServer) -> None:
    # Given the validator, the persister and the coach, each logged in as its own user,
    # and a dashboard subscribed to the coach's change channel as `dashboard`
    dashboard = aredis.Redis.from_url(acl_server.url("dashboard"))
    pubsub = dashboard.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(N.coach_changes)
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(run_validator(acl_server.settings("validator"), stop)),
        asyncio.create_task(run_persister(acl_server.settings("persister"), stop)),
        asyncio.create_task(run_coach(acl_server.settings("coach"), stop)),
    ]
    # When a producer publishes 5 valid events and 1 invalid, and a broken envelope lands on
    # the valid stream (persister and coach must each dead-letter it with their own rights)
    SyncProducer(acl_server.client("producer"), N).publish_many(
        [event(n) for n in range(5)] + [event(9, severity="fatal")]
    )
    admin = acl_server.client(ADMIN)
    admin.xadd(N.valid, {"__data__": b"not an envelope"})
    store = open_store(acl_server.settings("persister"))
    await store.open()
    await store.migrate()

    async def settled() -> bool:
        return await store.count() == 5 and admin.xlen(N.dead) == 3

    await _until(settled)
    # Then the dashboard hears the coach's announcement and reads the documents
    heard: list[Any] = []

    async def announced() -> bool:
        heard.append(await pubsub.get_message(timeout=0.1))
        return heard[-1] is not None

    await _until(announced)
    assert b'"project_id":7' in heard[-1]["data"]
    assert await known_projects(dashboard, N) == [7]
    assert await get_project(dashboard, N, 7)
    stop.set()
    await asyncio.gather(*tasks)
    await store.close()
    await pubsub.aclose()  # type: ignore[no-untyped-call]
    await dashboard.aclose()
    # And everything was stored or dead-lettered, nothing pending in any group
    assert admin.xpending(N.events, "validator")["pending"] == 0
    assert admin.xpending(N.valid, PERSISTER_GROUP)["pending"] == 0
    assert admin.xpending(N.valid, COACH_GROUP)["pending"] == 0
    stages = sorted(fields[b"stage"] for _, fields in rows(admin, N.dead))
    assert stages == [b"coach", b"persister", b"validator"]
    # And each stage could write its metrics (a refused write would only be logged at debug)
    for stage in ("validator", "persister", "coach"):
        assert int(admin.hget(N.metrics(stage), "entries") or 0) > 0, stage


async def _until(check: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def test_coach_is_refused_outside_its_keys_and_channel(acl_server: AclServer) -> None:
    coach = acl_server.client("coach")
    refused(lambda: coach.set("runbus:other", "x"))
    refused(lambda: coach.get(Names("other").coach_key(7, "data")))
    refused(lambda: coach.publish("runbus:other", "x"))
    refused(lambda: coach.xadd(N.valid, {"__data__": "{}"}))
    refused(lambda: coach.xrange(N.dead))
    refused(lambda: coach.xadd(N.redrive_audit, {"a": "b"}))
    refused(lambda: coach.hincrby("runbus:metrics:validator", "batches", 1))
    refused(lambda: coach.flushdb())


def test_dashboard_is_refused_everything_but_reads_and_subscribe(acl_server: AclServer) -> None:
    dashboard = acl_server.client("dashboard")
    refused(lambda: dashboard.set(N.coach_key(7, "data"), "x"))
    refused(lambda: dashboard.delete(N.coach_key(7, "data")))
    refused(lambda: dashboard.hgetall(N.coach_state(7)))
    refused(lambda: dashboard.hgetall(N.coach_meta(7)))
    refused(lambda: dashboard.xadd(N.events, {"__data__": "{}"}))
    refused(lambda: dashboard.xrange(N.dead))
    refused(lambda: dashboard.publish(N.coach_changes, "x"))
    refused(lambda: dashboard.keys("*"))
    other = dashboard.pubsub()  # type: ignore[no-untyped-call]
    with pytest.raises(NoPermissionError):
        other.subscribe("runbus:secrets")
        wait_for(lambda: other.get_message(timeout=0.05) is not None)


async def test_ops_library_works_as_ops(acl_server: AclServer) -> None:
    # Given three dead letters (one rejected entry each, by the real validator)
    admin = acl_server.client(ADMIN)
    SyncProducer(acl_server.client("producer"), N).publish_many(
        [event(n, stage="nope") for n in range(3)]
    )
    stop = asyncio.Event()
    task = asyncio.create_task(run_validator(acl_server.settings("validator"), stop))
    await asyncio.to_thread(wait_for, lambda: admin.xlen(N.dead) == 3)
    stop.set()
    await task
    ops = aredis.Redis.from_url(acl_server.url("ops"))
    # When ops lists, counts, shows, redrives one, purges one and reads the status, as `ops`
    page = await list_dead_letters(ops, N, limit=10)
    assert len(page.items) == 3
    assert (await dead_letter_stats(ops, N)).length == 3
    first, second = page.items[0].id, page.items[1].id
    assert (await get_dead_letter(ops, N, first)) is not None
    moved = await redrive(ops, N, DeadLetterFilter(ids=(first,)), operator="t")
    purged = await purge(ops, N, DeadLetterFilter(ids=(second,)), operator="t")
    status = await bus_status(ops, N)
    audit = await read_audit(ops, N)
    await ops.aclose()
    # Then the redriven entry is back on the incoming stream and the purged one is gone
    assert moved.moved == 1 and purged.deleted == 1
    assert admin.xlen(N.dead) == 1 and admin.xlen(N.events) == 4
    assert [a.action for a in audit] == ["purge", "redrive"]
    assert {s.name for s in status.streams} >= {N.events, N.valid, N.dead}
    # and the status reads the actions stream too (absent here, not refused)
    assert [(o.name, o.exists, o.error) for o in status.outlets] == [(N.actions, False, None)]


def test_ops_is_refused_outside_dead_letters_and_status(acl_server: AclServer) -> None:
    ops = acl_server.client("ops")
    admin = acl_server.client(ADMIN)
    admin.xadd(N.events, {"__data__": "{}"})
    refused(lambda: ops.xrange(N.events))
    refused(lambda: ops.xrange(N.valid))
    refused(lambda: ops.xreadgroup("validator", "c", {N.events: ">"}))
    refused(lambda: ops.xadd(N.valid, {"__data__": "{}"}))
    refused(lambda: ops.xdel(N.events, "1-1"))
    refused(lambda: ops.get(N.coach_key(7, "data")))
    refused(lambda: ops.xgroup_destroy(N.events, "g"))
    refused(lambda: ops.delete(N.dead))
    refused(lambda: ops.xtrim(N.dead, maxlen=0))
    # Redrive goes to the incoming stream only: another target is refused inside the script
    with pytest.raises(ResponseError, match=r"(?i)can't access|no permissions"):
        ops.eval("return redis.call('XADD', KEYS[2], '*', 'a', 'b')", 2, N.dead, N.valid)


async def test_api_user_publishes_reads_coach_dead_letters_status_and_metrics(
    acl_server: AclServer,
) -> None:
    # Given the API's credentials, a coach document and a stage's metrics hash
    admin = acl_server.client(ADMIN)
    admin.set(N.coach_key(7, "data"), '{"version": 1}')
    admin.hset(N.metrics("validator"), mapping={"batches": 1, "entries": 3})
    api = aredis.Redis.from_url(acl_server.url("api"))
    # Then it can publish, read the cache, the dead letters, the status and the metrics
    await Producer(api, N).publish(event(1))
    assert await api.get(N.coach_key(7, "data")) == b'{"version": 1}'
    assert (await dead_letter_stats(api, N)).length == 0
    status = await bus_status(api, N)
    assert len(status.streams) >= 3
    assert [(o.name, o.error) for o in status.outlets] == [(N.actions, None)]
    stages = await read_stage_metrics(api, N, ("validator",))
    assert stages[0].entries == 3
    # But it cannot consume, write downstream, or touch the coach's state
    with pytest.raises(NoPermissionError):
        await api.xreadgroup("validator", "c", {N.events: ">"})
    with pytest.raises(NoPermissionError):
        await api.xadd(N.valid, {"__data__": "{}"})
    with pytest.raises(NoPermissionError):
        await api.set(N.coach_key(7, "data"), "x")
    await api.aclose()


async def test_the_api_records_action_requests_and_the_platform_consumes_them(
    acl_server: AclServer,
) -> None:
    # Given a cached coach document (written as admin: the coach's job)
    suggestion = Suggestion(
        severity="warning",
        title="Fix it",
        body="b",
        action=NavigateAction(label="Go", params={"target": "x"}),
    )
    doc = CoachDocument(
        project_id=7,
        stage="data",
        version=2,
        computed_at=datetime.now(UTC),
        source_id=None,
        taxonomy_version="tx",
        suggestions=[suggestion],
    )
    acl_server.client(ADMIN).set(N.coach_key(7, "data"), doc.model_dump_json())  # fmt: skip
    # When the API, as its own user, records a click and lists the requests
    api = aredis.Redis.from_url(acl_server.url("api"))
    click = {"project_id": 7, "stage": "data", "version": 2, "index": 0}
    made = await request_action(api, N, acl_server.settings("api"), **click)  # type: ignore[arg-type]
    assert await recent_actions(api, N) == [made]
    await api.aclose()
    # Then the platform, as its own user, consumes it as its group and acknowledges it
    platform = acl_server.client("platform")
    platform.xgroup_create(N.actions, ACTIONS_GROUP, id="0")
    ((_, [(entry_id, fields)]),) = platform.xreadgroup(ACTIONS_GROUP, "p-1", {N.actions: ">"})
    assert parse_action(fields) == made
    assert platform.xack(N.actions, ACTIONS_GROUP, entry_id) == 1
    # And it can neither write the stream nor read anything else
    refused(lambda: platform.xadd(N.actions, {"__data__": "{}"}))
    refused(lambda: platform.get(N.coach_key(7, "data")))
