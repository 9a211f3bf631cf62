"""Redis clients built from settings (TLS via rediss://, password via URL or setting).

redis-py lets the URL's credentials override keyword arguments, so when
``RUNBUS_REDIS_PASSWORD`` is set the URL's password is dropped before the URL is used: the
setting (typically read from a secret file) wins, as documented.
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import redis
import redis.asyncio as aredis
import redis.asyncio.cluster as acluster
import redis.cluster

from shared.settings import Settings


def redact(url: str) -> str:
    """A URL without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()


def _options(settings: Settings) -> dict[str, Any]:
    options: dict[str, Any] = {"socket_connect_timeout": 5.0, "health_check_interval": 30}
    if settings.redis_password is not None:
        options["password"] = settings.redis_password.get_secret_value()
    if settings.redis_ca_file is not None:
        if urlsplit(settings.redis_url).scheme != "rediss":
            # A CA file without TLS would silently send passwords in clear.
            raise ValueError("RUNBUS_REDIS_CA_FILE is set but RUNBUS_REDIS_URL is not rediss://")
        options["ssl_ca_certs"] = str(settings.redis_ca_file)
    return options


def redis_url(settings: Settings) -> str:
    """The URL to connect with: without its password when the password setting is given."""
    url = settings.redis_url
    parts = urlsplit(url)
    if settings.redis_password is None or parts.password is None:
        return url
    user = f"{parts.username}@" if parts.username else ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=user + host))


def async_redis(settings: Settings, **overrides: Any) -> aredis.Redis:
    """An asyncio Redis client returning bytes (a cluster client with `redis_cluster`).

    The cluster client speaks the same commands, routed by key slot; it is typed as the
    single-node client because every caller uses only commands both have.
    """
    options = {**_options(settings), **overrides}
    if settings.redis_cluster:
        options.pop("health_check_interval", None)
        return cast(aredis.Redis, acluster.RedisCluster.from_url(redis_url(settings), **options))
    return aredis.Redis.from_url(redis_url(settings), **options)


def sync_redis(settings: Settings, **overrides: Any) -> redis.Redis:
    """A blocking Redis client returning bytes (a cluster client with `redis_cluster`)."""
    options = {**_options(settings), **overrides}
    if settings.redis_cluster:
        options.pop("health_check_interval", None)
        return cast(
            redis.Redis, redis.cluster.RedisCluster.from_url(redis_url(settings), **options)
        )
    return redis.Redis.from_url(redis_url(settings), **options)
