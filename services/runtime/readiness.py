"""Is the API ours, and is it up? The checks `runbus run all` makes before and after starting.

Before: the API port must be free, or the API child would restart-loop on "address already in
use" while another process answers there. After: ``GET /healthz`` must name the instance id
this supervisor gave its children; any other answer on that port is somebody else's API.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time

import orjson

from shared.consumer import sleep_unless_stopped

#: The most of a response the probe reads (a /healthz body is a few dozen bytes).
MAX_RESPONSE_BYTES = 64 * 1024


def port_taken(host: str, port: int) -> OSError | None:
    """Why the API could not bind host:port (None when it can), checked the way uvicorn binds."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc
    return None


async def http_get(
    host: str, port: int, path: str, timeout: float = 1.0
) -> tuple[int, bytes] | None:
    """Status and body of ``GET path`` (a minimal HTTP/1.0 probe); None when nothing answers."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError):
        return None
    try:
        writer.write(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        await writer.drain()
        response = await asyncio.wait_for(_read_to_end(reader), timeout)
    except (OSError, TimeoutError):
        return None
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    head, _, body = response.partition(b"\r\n\r\n")
    status = head.split(b" ")[1:2]
    return (int(status[0]), body) if status and status[0].isdigit() else None


async def _read_to_end(reader: asyncio.StreamReader) -> bytes:
    """The response up to the server's close (HTTP/1.0), at most `MAX_RESPONSE_BYTES`."""
    chunks: list[bytes] = []
    size = 0
    while size < MAX_RESPONSE_BYTES and (chunk := await reader.read(MAX_RESPONSE_BYTES - size)):
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


async def http_ok(host: str, port: int, path: str = "/healthz", timeout: float = 1.0) -> bool:
    """True when ``GET path`` on host:port answers 200."""
    answer = await http_get(host, port, path, timeout)
    return answer is not None and answer[0] == 200


async def serves_instance(host: str, port: int, instance: str) -> bool:
    """True when the API on host:port answers /healthz 200 for `instance`."""
    answer = await http_get(host, port, "/healthz")
    if answer is None or answer[0] != 200:
        return False
    try:
        body = orjson.loads(answer[1])
    except orjson.JSONDecodeError:
        return False
    return isinstance(body, dict) and body.get("instance") == instance


async def wait_until_serving(
    host: str, port: int, instance: str, stop: asyncio.Event, timeout: float = 60.0
) -> bool:
    """Poll until the API of `instance` serves; False on timeout or stop."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stop.is_set():
        if await serves_instance(host, port, instance):
            return True
        await sleep_unless_stopped(stop, 0.2)
    return False
