"""The asyncio clients pack commands with hiredis: the same bytes redis-py's packer writes."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio.connection import Connection, SSLConnection
from redis.exceptions import DataError

from shared.connections import HiredisPacking, async_redis, packed_in_c
from shared.settings import Settings

COMMANDS: list[tuple[Any, ...]] = [
    ("XACK", "{ns}:events", "validator", *(f"1700000000000-{i}" for i in range(1000))),
    ("EVALSHA", "ab" * 20, 2, "{ns}:events", "{ns}:valid", "g", "1-0", 1, b"\x00\x01\xff"),
    ("XADD", b"s", "MAXLEN", "~", 10_000, "*", b"__data__", "é🧪".encode()),
    ("SET", "k", 1.5, "EX", 10),
    ("SET", "k", 0.1), ("SET", "k", 1e20), ("SET", "k", -3), ("SET", "k", 2**70),
    ("SET", "k", memoryview(b"view")), ("SET", "k", bytearray(b"array")), ("SET", "k", ""),
    ("CLIENT SETNAME", "runbus"), (b"CONFIG GET", b"maxmemory"),
]  # fmt: skip


def python_packed(*args: Any) -> bytes:
    return b"".join(bytes(chunk) for chunk in Connection().pack_command(*args))


def c_packed(*args: Any) -> bytes:
    return b"".join(packed_in_c(Connection)().pack_command(*args))


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: str(a[0]))
def test_hiredis_packs_what_redis_py_packs(args: tuple[Any, ...]) -> None:
    assert c_packed(*args) == python_packed(*args)


@pytest.mark.parametrize("bad", [None, True, object()])
def test_what_redis_py_refuses_is_refused_the_same_way(bad: object) -> None:
    with pytest.raises(DataError):
        python_packed("SET", "k", bad)
    with pytest.raises(DataError):
        c_packed("SET", "k", bad)
    with pytest.raises(DataError):  # also next to a bytearray (packed again after converting)
        c_packed("SET", bytearray(b"k"), bad)


def test_each_connection_kind_gets_its_own_packed_class() -> None:
    plain, tls = packed_in_c(Connection), packed_in_c(SSLConnection)
    assert issubclass(plain, HiredisPacking) and issubclass(plain, Connection)
    assert issubclass(tls, HiredisPacking) and issubclass(tls, SSLConnection)
    assert packed_in_c(Connection) is plain


def test_the_settings_client_uses_it() -> None:
    client = async_redis(Settings(redis_url="redis://127.0.0.1:1/0", _env_file=None))  # type: ignore[call-arg]
    assert issubclass(client.connection_pool.connection_class, HiredisPacking)
