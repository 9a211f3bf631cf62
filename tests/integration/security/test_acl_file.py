"""The ACL file itself: the shipped one loads and locks everything; no role can administer
Redis or destroy data; a file rendered for another namespace confines users to it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import redis
from redis.exceptions import AuthenticationError

from services.security.acl import ADMIN, ROLE_NAMES
from services.validator.app import run_validator
from shared.names import Names
from shared.producer import SyncProducer
from shared.settings import REPO_ROOT
from tests.conftest import wait_for
from tests.integration.security.conftest import AclServer, command, one_shot
from tests.integration.security.test_acl_roles import event, refused

pytestmark = pytest.mark.integration
N = Names("runbus")
SHIPPED = REPO_ROOT / "deploy" / "redis" / "users.acl"

#: Commands no runbus role may run, whatever the key: administration and mass destruction.
FORBIDDEN: list[tuple[str, ...]] = [
    ("FLUSHALL",),
    ("FLUSHDB",),
    ("CONFIG", "SET", "appendonly", "no"),
    ("CONFIG", "GET", "*"),
    ("ACL", "SETUSER", "x", "on"),
    ("ACL", "LIST"),
    ("SHUTDOWN",),
    ("DEBUG", "SLEEP", "0"),
    ("MODULE", "LIST"),
    ("SCRIPT", "FLUSH"),
    ("FUNCTION", "FLUSH"),
    ("CLIENT", "KILL", "ID", "1"),
    ("CLIENT", "LIST"),
    ("KEYS", "*"),
    ("SCAN", "0"),
    ("MONITOR",),
    ("SLAVEOF", "NO", "ONE"),
    ("BGSAVE",),
    ("SELECT", "1"),
    ("DEL", N.events),
    ("UNLINK", N.dead),
    ("RENAME", N.events, "x"),
    ("XGROUP", "DESTROY", N.events, "validator"),
    ("XGROUP", "DELCONSUMER", N.valid, "persister", "c"),
    ("XGROUP", "SETID", N.valid, "coach", "$"),
    ("XSETID", N.dead, "9999999999999-0"),
    ("EXPIRE", N.valid, "1"),
    ("RESTORE", "x", "0", "x"),
]


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_no_role_can_administer_redis_or_destroy_streams(acl_server: AclServer, role: str) -> None:
    # Given the admin asking Redis what the role may do (ACL DRYRUN runs nothing)
    admin = acl_server.client(ADMIN)
    # Then every administrative or destructive command is refused for the role
    dry = [command(admin, "ACL", "DRYRUN", role, *cmd) for cmd in FORBIDDEN]
    allowed = [" ".join(cmd) for cmd, answer in zip(FORBIDDEN, dry, strict=True) if answer == b"OK"]
    assert allowed == []
    # And the check is real: the role's own job passes the same dry run
    job = {
        "producer": ("XADD", N.events, "*", "__data__", "{}"),
        "validator": ("XACK", N.events, "validator", "1-1"),
        "persister": ("XACK", N.valid, "persister", "1-1"),
        "coach": ("SET", N.coach_key(1, "data"), "{}"),
        "ops": ("XRANGE", N.dead, "-", "+"),
        "dashboard": ("GET", N.coach_key(1, "data")),
        "api": ("XADD", N.events, "*", "__data__", "{}"),
        "platform": ("XREADGROUP", "GROUP", "platform", "c", "STREAMS", N.actions, ">"),
    }[role]
    assert command(admin, "ACL", "DRYRUN", role, *job) == b"OK"


def test_the_api_writes_action_requests_and_only_the_platform_consumes_them(
    acl_server: AclServer,
) -> None:
    # Given the admin asking Redis what each role may do on the actions stream
    admin = acl_server.client(ADMIN)

    def allowed(role: str, *cmd: str) -> bool:
        return bool(command(admin, "ACL", "DRYRUN", role, *cmd) == b"OK")

    capped = ("XADD", N.actions, "MAXLEN", "~", "100000", "*", "__data__", "{}")
    # Then the API may append (capped) and read the newest back, not consume nor trim
    assert allowed("api", *capped) and allowed("api", "XREVRANGE", N.actions, "+", "-")
    assert not allowed("api", "XREADGROUP", "GROUP", "platform", "c", "STREAMS", N.actions, ">")
    assert not allowed("api", "XTRIM", N.actions, "MAXLEN", "0")
    # And the platform may consume it as a group, neither write, trim nor read anything else
    assert allowed("platform", "XACK", N.actions, "platform", "1-1")
    assert allowed("platform", "XGROUP", "CREATE", N.actions, "platform", "0", "MKSTREAM")
    assert not allowed("platform", *capped)
    assert not allowed("platform", "XTRIM", N.actions, "MAXLEN", "0")
    assert not allowed("platform", "XRANGE", N.dead, "-", "+")
    # And no stage touches it
    for stage in ("validator", "persister", "coach", "producer", "dashboard", "ops"):
        assert not allowed(stage, *capped), stage


def test_shipped_file_loads_and_lets_nobody_in(acl_servers: Callable[..., AclServer]) -> None:
    # Given redis-server started with the shipped file as is (no passwords in it)
    server = acl_servers(passwords={}, acl_file=SHIPPED)

    def refuses(client: redis.Redis) -> bool:
        try:
            client.ping()
        except AuthenticationError:
            return True
        except redis.ConnectionError:
            return False  # not listening yet
        return False

    # Then it runs, and neither an anonymous client nor any role can log in
    wait_for(lambda: refuses(one_shot(server.port)))
    assert server.proc is not None and server.proc.poll() is None
    for role in (ADMIN, *ROLE_NAMES):
        client = one_shot(server.port, username=role, password="anything")
        with pytest.raises(AuthenticationError):
            client.ping()


async def test_file_rendered_for_another_namespace_confines_its_users(
    acl_servers: Callable[..., AclServer],
) -> None:
    # Given a server whose ACL file was rendered for namespace "blue"
    server = acl_servers(namespace="blue")
    blue = Names("blue")
    admin = server.client(ADMIN)
    # When a producer publishes to blue and blue's validator runs
    SyncProducer(server.client("producer"), blue).publish_many([event(1), event(2)])
    stop = asyncio.Event()
    task = asyncio.create_task(run_validator(server.settings("validator"), stop))
    await asyncio.to_thread(wait_for, lambda: admin.xlen(blue.valid) == 2)
    stop.set()
    await task
    # Then blue's users cannot reach the default namespace's streams
    producer, validator = server.client("producer"), server.client("validator")
    refused(lambda: producer.xadd(N.events, {"__data__": "{}"}))
    refused(lambda: validator.xreadgroup("validator", "c", {N.events: ">"}))
    refused(lambda: server.client("dashboard").get(N.coach_key(7, "data")))


def test_passwords_are_stored_hashed_never_in_clear(acl_server: AclServer) -> None:
    # Given the rendered file and the server's view of its users
    assert acl_server.acl_file is not None
    text = acl_server.acl_file.read_text()
    admin = acl_server.client(ADMIN)
    listed = b"\n".join(command(admin, "ACL", "LIST"))
    # Then no password appears, in the file or in ACL LIST
    for password in acl_server.passwords.values():
        secret = password.get_secret_value()
        assert secret not in text
        assert secret.encode() not in listed


def test_the_dashboard_of_the_api_may_follow_changes_and_look_up_one_entry(
    acl_server: AclServer,
) -> None:
    # Given the admin asking Redis what the api user may do for its dashboard
    admin = acl_server.client(ADMIN)

    def allowed(role: str, *cmd: str) -> bool:
        return bool(command(admin, "ACL", "DRYRUN", role, *cmd) == b"OK")

    # Then it may follow the coach's change channel and look up entries (search), read only
    assert allowed("api", "SUBSCRIBE", N.coach_changes)
    assert allowed("api", "XRANGE", N.events, "1-0", "1-0")
    assert allowed("api", "XRANGE", N.valid, "1-0", "1-0")
    assert allowed("api", "SISMEMBER", N.coach_projects, "7")
    # And nothing more on those streams: no consuming, deleting or trimming them
    assert not allowed("api", "XREADGROUP", "GROUP", "validator", "c", "STREAMS", N.events, ">")
    assert not allowed("api", "XDEL", N.valid, "1-0")
    assert not allowed("api", "XTRIM", N.events, "MAXLEN", "0")
    assert not allowed("api", "SUBSCRIBE", "other-channel")
