"""Operations over the whole bus on a real cluster (P=12): dead letters of several partitions
are counted, listed in merged time order, shown, redriven to their own partition and purged;
status and /metrics show every partition and the totals."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aredis
from prometheus_client.parser import text_string_to_metric_families
from redis.cluster import RedisCluster
from typer.testing import CliRunner

from services.cli.main import app as cli_app
from services.ops.deadletters import (
    dead_letter_stats,
    follow_dead_letters,
    get_dead_letter,
    list_dead_letters,
    purge,
    read_audit,
    redrive,
)
from services.ops.models import DeadLetterFilter
from services.ops.status import bus_status
from shared.connections import async_redis
from shared.names import VALIDATOR_GROUP
from shared.settings import Settings
from shared.wire import REDRIVEN_FROM_FIELD
from tests.cluster import RedisClusterFixture
from tests.integration.api.helpers import started_app
from tests.unit.ops.builders import dead_fields

pytestmark = pytest.mark.integration

T0 = 1_700_000_000_000
#: (partition, entry id, error code) of the dead letters every test starts with. Partitions 2
#: and 9 hold the same entry id: merged order breaks the tie by partition index.
LETTERS = (
    (5, f"{T0}-0", "malformed_json"),
    (2, f"{T0 + 1}-0", "invalid_reason_code:x"),
    (9, f"{T0 + 1}-0", "invalid_reason_code:y"),
    (0, f"{T0 + 2}-0", "malformed_json"),
)
MERGED = ["5:1700000000000-0", "2:1700000000001-0", "9:1700000000001-0", "0:1700000000002-0"]


@pytest.fixture
def cluster_settings(redis_cluster: RedisClusterFixture, tmp_path: Path) -> Settings:
    """Settings of a namespace of this test's own on the cluster, in 12 partitions."""
    return Settings(
        redis_url=redis_cluster.url, redis_cluster=True, partitions=12,
        namespace=f"t{uuid.uuid4().hex[:8]}", database_url=f"sqlite:///{tmp_path / 'h.db'}",
        spool_path=tmp_path / "spool.db", _env_file=None,  # type: ignore[call-arg]
    )  # fmt: skip


@pytest.fixture
def sync_cluster(redis_cluster: RedisClusterFixture) -> Iterator[RedisCluster]:
    """A blocking cluster client, to write the dead letters and read the streams."""
    client = redis_cluster.client()
    yield client
    client.close()


@pytest.fixture
def letters(cluster_settings: Settings, sync_cluster: RedisCluster) -> Settings:
    """The namespace with `LETTERS` on their partitions' dead-letter streams."""
    for index, entry_id, code in LETTERS:
        partition = cluster_settings.names.partition(index)
        fields = dead_fields([code], source_stream=partition.events, source_id=f"1-{index}")
        sync_cluster.xadd(partition.dead, fields, id=entry_id)  # type: ignore[arg-type]
    return cluster_settings


@pytest.fixture
async def client(cluster_settings: Settings) -> AsyncIterator[aredis.Redis]:
    """The cluster client the settings give (what the CLI and the API use)."""
    connection = async_redis(cluster_settings)
    yield connection
    await connection.aclose()


async def test_stats_total_every_partition_and_give_each_its_share(
    letters: Settings, client: aredis.Redis
) -> None:
    # given dead letters on partitions 0, 2, 5 and 9
    # when the stats are taken
    stats = await dead_letter_stats(client, letters.names)
    # then the totals are the sum of the partitions' counts
    assert (stats.length, stats.scanned) == (4, 4)
    assert {c.key: c.count for c in stats.by_family} == {"malformed_json": 2,
                                                         "invalid_reason_code": 2}  # fmt: skip
    assert len(stats.partitions) == 12
    assert sum(share.length for share in stats.partitions) == stats.length
    lengths = {share.partition: share.length for share in stats.partitions if share.length}
    assert lengths == {0: 1, 2: 1, 5: 1, 9: 1}
    # and the oldest and newest are over every partition, qualified by theirs
    assert (stats.oldest_id, stats.newest_id) == (MERGED[0], MERGED[-1])
    assert stats.stream == "{" + letters.namespace + ".*}:dead"


async def test_tail_merges_the_partitions_in_time_order_and_pages_across_them(
    letters: Settings, client: aredis.Redis
) -> None:
    names = letters.names
    # when the newest dead letters are listed
    page = await list_dead_letters(client, names, limit=20)
    # then they come from every partition, oldest first, ties in partition order
    assert [item.id for item in page.items] == MERGED
    assert page.next_after == MERGED[-1]
    # and a page of two, then the page before it, split the tie at the partition
    newest = await list_dead_letters(client, names, limit=2)
    assert [item.id for item in newest.items] == MERGED[2:]
    older = await list_dead_letters(client, names, limit=2, before_id=newest.next_before)
    assert [item.id for item in older.items] == MERGED[:2]
    # and paging forward from the tie's first half gives the rest
    forward = await list_dead_letters(client, names, limit=20, after_id=MERGED[1])
    assert [item.id for item in forward.items] == MERGED[2:]
    # and a plain cursor applies to every partition, ties excluded
    plain = await list_dead_letters(client, names, limit=20, after_id=f"{T0 + 1}-0")
    assert [item.id for item in plain.items] == MERGED[3:]


async def test_follow_reads_every_partition_from_the_tail_on(
    letters: Settings, client: aredis.Redis, sync_cluster: RedisCluster
) -> None:
    names = letters.names
    page = await list_dead_letters(client, names, limit=1)
    follow = follow_dead_letters(client, names, after_id=page.next_after, block_ms=100)
    # when a dead letter arrives on partition 7 and one on partition 11
    for index in (7, 11):
        sync_cluster.xadd(names.partition(index).dead, dead_fields(["malformed_json"]))  # type: ignore[arg-type]
    # then follow yields both (and nothing from before the cursor)
    got = [await asyncio.wait_for(anext(follow), 10) for _ in range(2)]
    assert sorted(record.id.split(":")[0] for record in got) == ["11", "7"]
    await follow.aclose()


async def test_show_finds_a_dead_letter_by_its_qualified_id(
    letters: Settings, client: aredis.Redis
) -> None:
    names = letters.names
    # when the second of the tied ids is asked for by its partition
    record = await get_dead_letter(client, names, "9:1700000000001-0")
    # then it is that partition's
    assert record is not None and record.id == "9:1700000000001-0"
    assert record.errors == ["invalid_reason_code:y"]
    # and a plain id is looked for in every partition (the first holding it wins)
    plain = await get_dead_letter(client, names, f"{T0 + 1}-0")
    assert plain is not None and plain.id == "2:1700000000001-0"
    # and a partition without it, or one the bus does not have, holds nothing
    assert await get_dead_letter(client, names, "3:1700000000001-0") is None
    assert await get_dead_letter(client, names, "99:1700000000001-0") is None


async def test_redrive_sends_each_dead_letter_back_to_its_own_partition(
    letters: Settings, client: aredis.Redis, sync_cluster: RedisCluster
) -> None:
    names = letters.names
    # given a dead letter that came from partition 4's valid stream too
    valid = names.partition(4).valid
    fields = dead_fields(["persist_rejected"], source_stream=valid)
    sync_cluster.xadd(names.partition(4).dead, fields, id=f"{T0 + 3}-0")  # type: ignore[arg-type]
    audits = len(await read_audit(client, names, limit=100))
    # when the unknown codes (partitions 2 and 9) and partition 4's are redriven by id
    flt = DeadLetterFilter(ids=("2:1700000000001-0", "9:1700000000001-0", "4:1700000000003-0"))
    result = await redrive(client, names, flt, operator="alice")
    # then each is on its own partition's incoming stream, and gone from its dead stream
    assert (result.matched, result.moved, result.gone) == (3, 3, 0)
    for index in (2, 9, 4):
        moved = sync_cluster.xrange(names.partition(index).events)
        assert len(moved) == 1
        assert moved[0][1][REDRIVEN_FROM_FIELD].decode().startswith(f"{index}:")
        assert sync_cluster.xlen(names.partition(index).dead) == 0
    assert {c.key: c.count for c in result.targets} == {
        names.partition(i).events: 1 for i in (2, 9, 4)
    }
    assert result.other_source == 1  # partition 4's came from its valid stream
    # and the others stayed
    assert sync_cluster.xlen(names.partition(5).dead) == 1
    # and one audit record says so
    records = await read_audit(client, names, limit=100)
    assert len(records) == audits + 1
    assert (records[0].count, records[0].target) == (3, result.target)
    # and a second run moves nothing twice
    again = await redrive(client, names, flt, operator="alice")
    assert (again.matched, again.moved) == (0, 0)


async def test_redrive_takes_no_single_target_with_several_partitions(
    letters: Settings, client: aredis.Redis
) -> None:
    flt = DeadLetterFilter(reasons=("malformed_json",))
    with pytest.raises(ValueError, match="its own partition"):
        await redrive(client, letters.names, flt, operator="alice", target="x")


async def test_purge_deletes_what_the_filter_matches_in_every_partition(
    letters: Settings, client: aredis.Redis, sync_cluster: RedisCluster
) -> None:
    names = letters.names
    # given a new malformed dead letter on partition 1 (the old ones are from 2023)
    sync_cluster.xadd(names.partition(1).dead, dead_fields(["malformed_json"]))  # type: ignore[arg-type]
    # when malformed ones older than a day are purged
    flt = DeadLetterFilter(reasons=("malformed_json",), before_s=86400)
    result = await purge(client, names, flt, operator="alice")
    # then partitions 0 and 5 lost theirs; partition 1's new one and the other codes stayed
    assert (result.matched, result.deleted) == (2, 2)
    lengths = {p.index: sync_cluster.xlen(p.dead) for p in names.all_partitions}
    assert {i: n for i, n in lengths.items() if n} == {1: 1, 2: 1, 9: 1}
    assert (await read_audit(client, names))[0].action == "purge"


async def test_status_lists_each_partitions_streams_and_groups_and_the_totals(
    letters: Settings, client: aredis.Redis, sync_cluster: RedisCluster
) -> None:
    names = letters.names
    # given the validator's group on every incoming stream, and 2 entries on partition 3's
    for partition in names.all_partitions:
        sync_cluster.xgroup_create(partition.events, VALIDATOR_GROUP, id="0", mkstream=True)
    for _ in range(2):
        sync_cluster.xadd(names.partition(3).events, {b"__data__": b"{}"})
    # when the status is taken
    status = await bus_status(client, names)
    # then every partition's three streams are there, in partition order
    assert status.partitions == 12 and len(status.streams) == 36
    assert [(s.partition, s.role) for s in status.streams[:3]] == [
        (0, "events"), (0, "valid"), (0, "dead")]  # fmt: skip
    events3 = next(s for s in status.streams if (s.partition, s.role) == (3, "events"))
    assert events3.length == 2 and events3.groups[0].lag == 2
    # and the totals sum them: lengths, dead letters, the group's lag; absent ones counted
    totals = {t.role: t for t in status.totals}
    assert (totals["events"].length, totals["dead"].length, status.dead_letters) == (2, 4, 4)
    group = next(g for g in totals["events"].groups if g.name == VALIDATOR_GROUP)
    assert (group.lag, group.missing) == (2, 0)
    assert totals["valid"].missing == 12


async def test_metrics_give_each_partition_its_series_and_sum_the_totals(
    letters: Settings, sync_cluster: RedisCluster
) -> None:
    names = letters.names
    sync_cluster.xgroup_create(names.partition(3).events, VALIDATOR_GROUP, id="0", mkstream=True)
    sync_cluster.xadd(names.partition(3).events, {b"__data__": b"{}"})
    # when Prometheus scrapes the API of the partitioned bus
    async with started_app(letters) as (_, http):
        text = (await http.get("/metrics")).text
    got = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    # then the totals are over every partition, and each partition has its own series
    assert got[("runbus_redis_up", ())] == 1
    assert got[("runbus_dead_letters_total", ())] == 4
    assert got[("runbus_events_received_total", ())] == 1
    dead5 = ("runbus_stream_length", (("partition", "5"), ("stream", "dead")))
    assert got[dead5] == 1
    lag = ("runbus_group_lag", (("group", "validator"), ("partition", "3"), ("stream", "events")))
    assert got[lag] == 1
    lengths = [labels for (n, labels), _ in got.items() if n == "runbus_stream_length"]
    assert len(lengths) == 36 + 1  # three streams a partition, and the bus's actions stream
    assert (("partition", ""), ("stream", "actions")) in lengths


async def test_the_api_takes_qualified_ids(letters: Settings) -> None:
    async with started_app(letters) as (_, http):
        # when a dead letter is asked for by its qualified id
        one = await http.get("/api/dead-letters/9:1700000000001-0")
        # and the page after the tie's first half
        page = await http.get("/api/dead-letters", params={"after_id": MERGED[1]})
        # and a partition id out of the pattern
        bad = await http.get("/api/dead-letters", params={"after_id": "01:1-0"})
        # and two are redriven by their qualified ids
        moved = await http.post("/api/dead-letters/redrive", json={"ids": MERGED[1:3]})
    # then each answer speaks qualified ids
    assert one.status_code == 200 and one.json()["id"] == "9:1700000000001-0"
    assert [item["id"] for item in page.json()["items"]] == MERGED[2:]
    assert bad.status_code == 422 and bad.json()["error"] == "invalid_stream_id"
    assert moved.status_code == 200 and moved.json()["moved"] == 2
    assert sorted(moved.json()["moved_ids"]) == MERGED[1:3]


def test_the_cli_shows_tails_and_refuses_a_target_on_the_partitioned_bus(
    letters: Settings, redis_cluster: RedisClusterFixture
) -> None:
    env = {"RUNBUS_REDIS_URL": redis_cluster.url, "RUNBUS_REDIS_CLUSTER": "true",
           "RUNBUS_PARTITIONS": "12", "RUNBUS_NAMESPACE": letters.namespace,
           "RUNBUS_OPERATOR": "test-op"}  # fmt: skip

    def run(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(cli_app, list(args), env=env, catch_exceptions=False)
        return result.exit_code, result.stdout + result.stderr

    # when the tail, one dead letter, the status and a redrive with --to are asked for
    tail_code, tail = run("dlq", "tail")
    show_code, shown = run("dlq", "show", "9:1700000000001-0", "--json")
    status_code, status = run("status")
    to_code, refused = run("dlq", "redrive", "--all", "--to", "x", "--yes")
    # then the tail is in merged order, with qualified ids
    assert tail_code == 0 and [line.split()[2] for line in tail.splitlines()] == MERGED
    assert show_code == 0 and '"id": "9:1700000000001-0"' in shown
    assert status_code == 0 and "totals over 12 partitions" in status and "11/dead" in status
    assert to_code == 2 and "its own partition" in refused
