"""Fixtures of the producer stories: Redis servers that cannot be reached, of two kinds."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.conftest import free_port


class SilentServer:
    """A TCP port that accepts connections and never answers: a hung Redis.

    A client connecting here waits for its socket timeout, so any publish that waited on a
    connection attempt would take seconds. `hang_up` resets every pending connection, so the
    producer's sender thread fails fast at teardown instead of waiting out its timeout.
    """

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.url = f"redis://127.0.0.1:{self._sock.getsockname()[1]}/0"

    def hang_up(self) -> None:
        """Reset every pending connection and stop listening (idempotent)."""
        if self._sock.fileno() == -1:
            return
        self._sock.setblocking(False)
        try:
            while True:
                conn, _ = self._sock.accept()
                conn.close()
        except OSError:  # BlockingIOError: nothing left; or already closed
            pass
        self._sock.close()


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    """A Redis that never answers (connections hang)."""
    server = SilentServer()
    yield server
    server.hang_up()


@pytest.fixture
def dead_url() -> str:
    """A loopback URL where nothing listens (connections are refused)."""
    return f"redis://127.0.0.1:{free_port()}/0"
