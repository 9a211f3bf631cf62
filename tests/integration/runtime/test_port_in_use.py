"""`runbus run all` on an API port somebody else holds: one line naming it, nothing started."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Callable, Iterator

import pytest

from tests.integration.runtime.helpers import Runbus

pytestmark = pytest.mark.integration


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """Another process's server: a socket listening on a free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock


def test_a_held_api_port_fails_with_one_line_naming_it(
    runbus: Callable[..., Runbus], listener: socket.socket
) -> None:
    # given the API port already held by another listener
    port = listener.getsockname()[1]
    system = runbus("all", port=port)
    # when `runbus run all` starts
    proc = system.start(subprocess.PIPE, subprocess.PIPE)
    out, err = proc.communicate(timeout=30)
    # then it exits 2 with one line naming host:port, and starts nothing, prints no banner
    assert proc.returncode == 2
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert f"127.0.0.1:{port}" in lines[0] and "already in use" in lines[0]
    assert b"runbus is running" not in out and b"child_started" not in err
