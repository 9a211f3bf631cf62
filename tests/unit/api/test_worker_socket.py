"""The socket each of several API workers binds (`reuse_port_socket`) serves connections as
uvicorn's own bind does: asyncio must see it as TCP, or it leaves Nagle on and every small
response waits for the client's delayed ACK (measured: 44 ms a request with two workers)."""

from __future__ import annotations

import asyncio
import socket

from services.api.app import reuse_port_socket
from tests.conftest import free_port


class _Seen(asyncio.Protocol):
    def __init__(self, found: asyncio.Future[int]) -> None:
        self.found = found

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        if not self.found.done():
            self.found.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        transport.close()


async def _nodelay_of_accepted() -> int:
    loop = asyncio.get_running_loop()
    found: asyncio.Future[int] = loop.create_future()
    port = free_port()
    server = await loop.create_server(
        lambda: _Seen(found), sock=reuse_port_socket("127.0.0.1", port)
    )
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        value = await asyncio.wait_for(found, timeout=10)
        writer.close()
        return value
    finally:
        server.close()
        await server.wait_closed()


def test_a_connection_accepted_on_a_worker_socket_has_nagle_off() -> None:
    assert asyncio.run(_nodelay_of_accepted()) != 0


def test_worker_sockets_are_tcp_by_protocol_number() -> None:
    sock = reuse_port_socket("127.0.0.1", free_port())
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()
