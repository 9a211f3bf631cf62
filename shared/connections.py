"""Redis clients built from settings (TLS via rediss://, password via URL or setting).

redis-py lets the URL's credentials override keyword arguments, so when
``RUNBUS_REDIS_PASSWORD`` is set the URL's password is dropped before the URL is used: the
setting (typically read from a secret file) wins, as documented.
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import hiredis
import redis
import redis.asyncio as aredis
import redis.asyncio.cluster as acluster
import redis.cluster
from redis.asyncio.connection import AbstractConnection, Connection
from redis.exceptions import DataError, OutOfMemoryError, ResponseError
from redis.typing import EncodableT

from shared.settings import Settings

#: How Redis answers a command that could grow memory once ``maxmemory`` is reached under the
#: ``noeviction`` policy: ``OOM command not allowed when used memory > 'maxmemory'.`` redis-py
#: raises it as `OutOfMemoryError`; inside a script's error it stays text.
OOM_PREFIX = "OOM "


def is_redis_full(exc: BaseException) -> bool:
    """True for Redis's answer to a write once it is at ``maxmemory`` (noeviction)."""
    if isinstance(exc, OutOfMemoryError):
        return True
    return isinstance(exc, ResponseError) and str(exc).startswith(OOM_PREFIX)


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


class HiredisPacking(AbstractConnection):
    """Commands packed by hiredis in C, as redis-py's blocking client packs them.

    redis-py's asyncio connection packs every argument in Python (about half a microsecond
    each): a stage's 1000-id XACK and every Lua move of a batch pay it. hiredis packs the same
    bytes (checked by the tests for every argument type the stages send).
    """

    def pack_command(self, *args: EncodableT) -> list[bytes]:
        """The RESP bytes of one command (a first argument "A B" is two words, as redis-py)."""
        head = args[0]
        if isinstance(head, str):
            args = (*head.encode().split(), *args[1:])
        elif isinstance(head, bytes) and b" " in head:
            args = (*head.split(), *args[1:])
        try:
            return [hiredis.pack_command(cast(Any, args))]
        except TypeError as exc:  # what redis-py's encoder raises for None, bool, ...
            if not any(isinstance(arg, bytearray) for arg in args):
                raise DataError(str(exc)) from exc
        # hiredis refuses bytearrays, which redis-py sends as bytes: looked for only then, as
        # scanning every argument of every command first costs more than the packing
        args = tuple(bytes(a) if isinstance(a, bytearray) else a for a in args)
        try:
            return [hiredis.pack_command(cast(Any, args))]
        except TypeError as exc:
            raise DataError(str(exc)) from exc


_PACKED_IN_C: dict[type[AbstractConnection], type[AbstractConnection]] = {}


def packed_in_c(base: type[AbstractConnection]) -> type[AbstractConnection]:
    """`base` (plain, TLS or unix-socket connection) with `HiredisPacking`'s packer."""
    if base not in _PACKED_IN_C:
        _PACKED_IN_C[base] = type(f"Hiredis{base.__name__}", (HiredisPacking, base), {})
    return _PACKED_IN_C[base]


def async_redis(settings: Settings, **overrides: Any) -> aredis.Redis:
    """An asyncio Redis client returning bytes (a cluster client with `redis_cluster`).

    The cluster client speaks the same commands, routed by key slot; it is typed as the
    single-node client because every caller uses only commands both have.
    """
    options = {**_options(settings), **overrides}
    if settings.redis_cluster:
        options.pop("health_check_interval", None)
        return cast(aredis.Redis, _packed_cluster(redis_url(settings), options))
    client = aredis.Redis.from_url(redis_url(settings), **options)
    pool = client.connection_pool
    pool.connection_class = packed_in_c(pool.connection_class)
    return client


def _packed_cluster(url: str, options: dict[str, Any]) -> acluster.RedisCluster:
    """A cluster client whose node connections pack in C: the nodes it knows now, and those
    it discovers later (the client builds each from its shared connection settings)."""
    client = acluster.RedisCluster.from_url(url, **options)
    kwargs = client.connection_kwargs
    kwargs["connection_class"] = packed_in_c(kwargs.get("connection_class", Connection))
    for node in client.startup_nodes:
        node.connection_class = kwargs["connection_class"]
    return client


def sync_redis(settings: Settings, **overrides: Any) -> redis.Redis:
    """A blocking Redis client returning bytes (a cluster client with `redis_cluster`)."""
    options = {**_options(settings), **overrides}
    if settings.redis_cluster:
        options.pop("health_check_interval", None)
        return cast(
            redis.Redis, redis.cluster.RedisCluster.from_url(redis_url(settings), **options)
        )
    return redis.Redis.from_url(redis_url(settings), **options)
