"""``rediss://`` (TLS) and passwords work through the URL and the settings, for real.

The TLS server is a private redis-server with ``--port 0 --tls-port N`` (no plain-text port at
all), a certificate signed by a throw-away CA made with openssl, and the runbus ACL file.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from urllib.parse import quote

import pytest
import redis
from pydantic import SecretStr
from redis.backoff import NoBackoff
from redis.retry import Retry

from services.security.acl import ADMIN
from services.validator.app import run_validator
from shared.connections import async_redis, sync_redis
from shared.names import Names
from shared.producer import BestEffortProducer, SyncProducer
from tests.conftest import wait_for
from tests.integration.security.conftest import AclServer
from tests.integration.security.test_acl_roles import event

pytestmark = pytest.mark.integration
N = Names("runbus")


@pytest.fixture
def tls_server(acl_servers: Callable[..., AclServer]) -> AclServer:
    """A TLS-only, ACL-loaded redis-server."""
    return acl_servers(tls=True)


async def test_validator_runs_over_tls_with_the_ca_file_setting(tls_server: AclServer) -> None:
    # Given rediss:// URLs with each role's password, and RUNBUS_REDIS_CA_FILE set
    settings = tls_server.settings("validator")
    assert settings.redis_url.startswith("rediss://validator:")
    assert tls_server.tls is not None and settings.redis_ca_file == tls_server.tls.ca
    client = sync_redis(settings)
    assert client.connection_pool.connection_class is redis.SSLConnection
    client.close()
    # When a producer publishes over TLS and the real validator runs over TLS
    SyncProducer(tls_server.client("producer"), N).publish_many([event(1), event(2, stage="x")])
    stop = asyncio.Event()
    task = asyncio.create_task(run_validator(settings, stop))
    admin = tls_server.client(ADMIN)
    await asyncio.to_thread(wait_for, lambda: admin.xlen(N.valid) == 1 and admin.xlen(N.dead) == 1)
    stop.set()
    worker = await task
    # Then both entries went through (a TLS-only server: nothing else could have carried them)
    assert worker.entries == 2


def test_ca_file_can_also_travel_in_the_url(tls_server: AclServer) -> None:
    # Given only a URL (what the best-effort producer takes), the CA file as a query parameter
    assert tls_server.tls is not None
    url = f"{tls_server.url('producer')}?ssl_ca_certs={quote(str(tls_server.tls.ca), safe='')}"
    producer = BestEffortProducer(url, N, tls_server.workdir / "spool.db")
    # When it publishes
    assert producer.publish(event(1))
    assert producer.close(timeout=10)
    # Then the event arrived over TLS
    assert producer.counters.published == 1
    assert tls_server.client(ADMIN).xlen(N.events) == 1


def test_an_untrusted_server_certificate_is_refused(tls_server: AclServer) -> None:
    # Given the validator's rediss:// URL but no CA file: the system trust store does not know
    # the test CA
    settings = tls_server.settings("validator", redis_ca_file=None)
    client = sync_redis(settings, retry=Retry(NoBackoff(), 0))
    # Then the connection is refused before any password is sent
    with pytest.raises(redis.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        client.ping()


def test_plain_text_is_refused_by_a_tls_only_server(tls_server: AclServer) -> None:
    # Given a redis:// URL on the TLS port
    plain = tls_server.url("producer").replace("rediss://", "redis://")
    client = redis.Redis.from_url(plain, retry=Retry(NoBackoff(), 0), socket_timeout=2)
    # Then nothing is served in clear
    with pytest.raises(redis.ConnectionError):
        client.ping()


async def test_password_setting_wins_over_the_url(acl_server: AclServer) -> None:
    # Given a URL naming the validator with a wrong password, and the right one in the setting
    # (RUNBUS_REDIS_PASSWORD, typically read from a secret file)
    right = acl_server.passwords["validator"]
    wrong_url = f"redis://validator:wrong@127.0.0.1:{acl_server.port}/0"
    settings = acl_server.settings("validator", redis_url=wrong_url, redis_password=right)
    # Then the client logs in with the setting's password
    client = async_redis(settings)
    assert await client.ping() is True
    await client.aclose()
    # And a URL with a user but no password works the same way
    bare = acl_server.settings(
        "validator",
        redis_url=acl_server.url("validator", with_password=False),
        redis_password=right,
    )
    assert sync_redis(bare).ping() is True


def test_a_wrong_password_setting_does_not_log_in(acl_server: AclServer) -> None:
    settings = acl_server.settings(
        "validator",
        redis_url=acl_server.url("validator", with_password=False),
        redis_password=SecretStr("not-the-password"),
    )
    with pytest.raises(redis.AuthenticationError):
        sync_redis(settings, retry=Retry(NoBackoff(), 0)).ping()
