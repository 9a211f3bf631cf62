"""Readiness recognises the API it started: /healthz must name its instance id."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
import pytest

from services.runtime.readiness import port_taken, serves_instance, wait_until_serving

Healthz = Callable[[dict[str, object]], Awaitable[int]]


@pytest.fixture
async def healthz() -> AsyncIterator[Healthz]:
    """Factory: an HTTP/1.0 server on a free port answering every request 200 with `body`."""
    servers: list[asyncio.Server] = []

    async def start(body: dict[str, object]) -> int:
        payload = orjson.dumps(body)

        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            head = b"HTTP/1.0 200 OK\r\ncontent-type: application/json\r\n"
            writer.write(head + b"content-length: %d\r\n\r\n" % len(payload) + payload)
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def test_readiness_ignores_a_foreign_healthz(healthz: Healthz) -> None:
    # given another runbus answering /healthz on the port, for its own instance
    port = await healthz({"status": "ok", "instance": "someone-else"})
    stop = asyncio.Event()
    # then the supervisor of instance "mine" does not take it for its API
    assert await serves_instance("127.0.0.1", port, "mine") is False
    assert await wait_until_serving("127.0.0.1", port, "mine", stop, timeout=0.5) is False
    # and it would recognise its own
    assert await wait_until_serving("127.0.0.1", port, "someone-else", stop, timeout=5) is True


async def test_a_healthz_without_instance_is_not_ours(healthz: Healthz) -> None:
    port = await healthz({"status": "ok"})
    assert await serves_instance("127.0.0.1", port, "mine") is False


def test_port_taken_names_the_error_only_while_something_listens() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.listen()
        taken = port_taken("127.0.0.1", port)
        assert taken is not None and "in use" in (taken.strerror or "")
    assert port_taken("127.0.0.1", port) is None
