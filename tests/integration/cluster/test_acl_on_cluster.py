"""The rendered ACL file loads on every node of a real 3+3 cluster and holds on each of them.

Each node gets the file's lines as ``ACL SETUSER`` (the fixture's nodes start without an
aclfile): ``admin`` first, then replication switched to it (``masteruser``/``masterauth``,
since the default user is about to be turned off), the roles, and ``default`` last. Then
clients log in as ``producer`` and ``validator`` through the cluster client of the settings:
what their jobs need works on every partition, and what they may not do is refused with
NOPERM by every node, master or replica, whatever slots it serves (Redis checks the ACL
before it redirects).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest
import redis
from pydantic import SecretStr
from redis.exceptions import AuthenticationError, MovedError, NoPermissionError, ResponseError

from services.security.acl import ADMIN, ROLE_NAMES, render
from shared.connections import sync_redis
from shared.names import Names
from shared.settings import Settings
from tests.cluster import RedisClusterFixture
from tests.conftest import wait_for
from tests.integration.security.conftest import make_passwords, one_shot

pytestmark = pytest.mark.integration
PARTITIONS = 12
NAMES = Names("aclc", PARTITIONS)
#: An atomic move as the stages run it: acknowledge on the input, append to an output.
MOVE = """
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return redis.call('XADD', KEYS[2], '*', 'a', 'b')
"""


def setuser_args(text: str) -> list[tuple[str, list[str]]]:
    """Each line of an ACL file as (user, ACL SETUSER rules): a selector is one argument."""
    users = []
    for line in text.splitlines():
        _, user, rules = line.split(" ", 2)
        users.append((user, re.findall(r"\([^)]*\)|\S+", rules)))
    return users


def load(node: redis.Redis, text: str, admin: SecretStr) -> None:
    """Load the file on one node, keeping it administrable and its replication working."""
    users = dict(setuser_args(text))
    node.execute_command("ACL", "SETUSER", ADMIN, *users.pop(ADMIN))  # type: ignore[no-untyped-call]
    node.config_set("masteruser", ADMIN)
    node.config_set("masterauth", admin.get_secret_value())
    default = users.pop("default")
    for user, rules in users.items():
        node.execute_command("ACL", "SETUSER", user, *rules)  # type: ignore[no-untyped-call]
    node.execute_command("ACL", "SETUSER", "default", *default)  # type: ignore[no-untyped-call]


@pytest.fixture
def secured(private_cluster: RedisClusterFixture) -> Iterator[tuple[RedisClusterFixture, Any]]:
    """The private cluster, every node loaded with the file rendered for P=12 on a cluster."""
    passwords = make_passwords()
    text = render(NAMES.namespace, passwords, PARTITIONS, cluster=True)
    for node in private_cluster.nodes:
        load(node.client(), text, passwords[ADMIN])
    yield private_cluster, passwords


def acl_list(admin: redis.Redis) -> dict[str, list[list[str]]]:
    """ACL LIST by user, each selector's rules sorted (a node lists commands in hash order)."""
    listed: dict[str, list[list[str]]] = {}
    for line in admin.execute_command("ACL", "LIST"):  # type: ignore[no-untyped-call]
        _, user, rules = line.decode().split(" ", 2)
        parts = re.findall(r"\([^)]*\)|[^()]+", rules)
        listed[user] = sorted(sorted(part.strip("() ").split()) for part in parts)
    return listed


def url(port: int, role: str, passwords: dict[str, SecretStr]) -> str:
    secret = quote(passwords[role].get_secret_value(), safe="")
    return f"redis://{role}:{secret}@127.0.0.1:{port}/0"


def cluster_client(cluster: RedisClusterFixture, role: str, passwords: Any) -> redis.Redis:
    """The settings' cluster client, logged in as `role`."""
    settings = Settings(
        redis_url=url(cluster.nodes[0].port, role, passwords), redis_cluster=True,
        namespace=NAMES.namespace, partitions=PARTITIONS, _env_file=None,  # type: ignore[call-arg]
    )  # fmt: skip
    return sync_redis(settings)


def node_clients(cluster: RedisClusterFixture, role: str, passwords: Any) -> list[redis.Redis]:
    """One plain client per node (masters and replicas), logged in as `role`."""
    return [redis.Redis.from_url(url(n.port, role, passwords)) for n in cluster.nodes]


def refused_everywhere(clients: list[redis.Redis], call: Callable[[redis.Redis], object]) -> None:
    """Every node refuses the call with NOPERM (not MOVED: the ACL is checked first)."""
    for client in clients:
        with pytest.raises(NoPermissionError):
            call(client)


def allowed_everywhere(clients: list[redis.Redis], call: Callable[[redis.Redis], object]) -> None:
    """Every node accepts the call, or redirects it to the slot's master: never NOPERM."""
    for client in clients:
        try:
            call(client)
        except (MovedError, ResponseError) as exc:
            assert not isinstance(exc, NoPermissionError), exc
            assert isinstance(exc, MovedError) or "MOVED" in str(exc), exc


def test_the_file_loads_on_every_node_and_only_the_admin_administers(secured: Any) -> None:
    cluster, passwords = secured
    # Given every node loaded with the rendered file
    admins = node_clients(cluster, ADMIN, passwords)
    # Then every node has exactly the file's users, with the same rules
    listed = [acl_list(a) for a in admins]
    assert all(rules == listed[0] for rules in listed)
    assert set(listed[0]) == {"default", ADMIN, *ROLE_NAMES}
    # And nobody gets in without a password, while the admin still runs the cluster
    for node in cluster.nodes:
        with pytest.raises(AuthenticationError):
            one_shot(node.port).ping()
    assert all(a.cluster("info")["cluster_state"] == "ok" for a in admins)


def test_replicas_resync_through_the_admin_once_the_default_user_is_off(secured: Any) -> None:
    cluster, passwords = secured
    admins = node_clients(cluster, ADMIN, passwords)
    masters = [a for a in admins if a.info("replication")["role"] == "master"]
    # When every replica link is cut (replicas reconnect, and must log in to do so)
    for master in masters:
        master.client_kill_filter(_type="replica")
    replicas = [a for a in admins if a not in masters]

    def synced() -> bool:
        linked = all(m.info("replication").get("connected_slaves") == 1 for m in masters)
        return linked and all(r.info("replication")["master_link_status"] == "up" for r in replicas)

    # Then every replica is back in sync with its master
    wait_for(synced, timeout=20)


def test_the_producer_writes_every_partition_and_is_refused_the_rest_on_every_node(
    secured: Any,
) -> None:
    cluster, passwords = secured
    # Given the producer's cluster client and its client on each node
    producer, nodes = (
        cluster_client(cluster, "producer", passwords),
        node_clients(cluster, "producer", passwords),
    )
    # When it appends to every partition's incoming stream
    for partition in NAMES.all_partitions:
        producer.xadd(partition.events, {"a": "b"})
    # Then every partition has its entry
    admin = cluster_client(cluster, ADMIN, passwords)
    assert [admin.xlen(p.events) for p in NAMES.all_partitions] == [1] * PARTITIONS
    # And each node accepts (or redirects) XADD to each incoming stream, and refuses the rest
    for partition in NAMES.all_partitions:
        allowed_everywhere(nodes, lambda c, p=partition: c.xadd(p.events, {"a": "b"}))
        for key in (partition.valid, partition.dead):
            refused_everywhere(nodes, lambda c, k=key: c.xadd(k, {"a": "b"}))
        refused_everywhere(nodes, lambda c, p=partition: c.xrange(p.events))
    refused_everywhere(nodes, lambda c: c.xadd(Names("other", PARTITIONS).events, {"a": "b"}))
    refused_everywhere(nodes, lambda c: c.get(NAMES.coach_key(7, "data")))
    refused_everywhere(nodes, lambda c: c.flushall())


def test_the_validator_consumes_and_moves_on_every_partition_and_nothing_else(
    secured: Any,
) -> None:
    cluster, passwords = secured
    # Given an entry on every partition's incoming stream
    producer = cluster_client(cluster, "producer", passwords)
    ids = [producer.xadd(p.events, {"a": "b"}) for p in NAMES.all_partitions]
    validator = cluster_client(cluster, "validator", passwords)
    move = validator.register_script(MOVE)
    group = "validator"
    # When the validator creates its group, reads and moves each entry to `valid` atomically
    for partition, entry_id in zip(NAMES.all_partitions, ids, strict=True):
        validator.xgroup_create(partition.events, group, id="0", mkstream=True)
        read = validator.xreadgroup(group, "c1", {partition.events: ">"}, count=10)
        assert [e for e, _ in read[0][1]] == [entry_id]
        move(keys=[partition.events, partition.valid, partition.dead], args=[group, entry_id])
        assert validator.xpending(partition.events, group)["pending"] == 0
    # Then every partition's valid stream has it
    admin = cluster_client(cluster, ADMIN, passwords)
    assert [admin.xlen(p.valid) for p in NAMES.all_partitions] == [1] * PARTITIONS
    # And on every node it may neither publish, nor consume another stage's stream
    nodes = node_clients(cluster, "validator", passwords)
    for partition in NAMES.all_partitions:
        refused_everywhere(nodes, lambda c, p=partition: c.xadd(p.events, {"a": "b"}))
        refused_everywhere(nodes, lambda c, p=partition: c.xreadgroup(group, "c1", {p.valid: ">"}))
        refused_everywhere(nodes, lambda c, p=partition: c.delete(p.events))
