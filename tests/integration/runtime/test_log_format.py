"""One log format per output: JSON lines off a TTY, readable coloured lines on one, for our
records and for FastStream's and uvicorn's alike (no raw ANSI codes in a file, no CTRL+C hints)."""

from __future__ import annotations

import os
import pty
import select
import signal
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from tests.conftest import wait_for
from tests.integration.runtime.helpers import Runbus

pytestmark = pytest.mark.integration

ESC = b"\x1b"


def test_off_a_tty_every_line_of_every_process_is_json(
    runbus: Callable[..., Runbus], tmp_path: Path
) -> None:
    # given `runbus run all` with its stdout and stderr in files (`make run > file`)
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    system = runbus("all")
    with out.open("wb") as stdout, err.open("wb") as stderr:
        system.start(stdout, stderr)
        system.wait_serving(children=4)
        wait_for(lambda: b"runbus is running" in out.read_bytes(), timeout=30)
        system.signal(signal.SIGTERM)
        assert system.wait(30) == 0
    # then every log line parses as one JSON object, FastStream's and uvicorn's included ...
    lines = err.read_bytes().splitlines()
    records = [orjson.loads(line) for line in lines]
    assert all(isinstance(r, dict) and "event" in r and "level" in r for r in records)
    loggers = [r.get("logger") for r in records]
    assert loggers.count("faststream") >= 3 * 4  # three apps: starting, started, down, ...
    assert "uvicorn.error" in loggers and "runbus.runtime" in loggers
    # ... with no terminal codes and no interactive hint anywhere
    for output in (out.read_bytes(), err.read_bytes()):
        assert ESC not in output and b"CTRL+C" not in output


def read_pty(fd: int, until: Callable[[bytes], bool], timeout: float) -> bytes:
    """What the terminal shows until `until` holds or the other side closes."""
    seen = bytearray()
    deadline = time.monotonic() + timeout
    while not until(bytes(seen)) and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: every process holding the terminal has exited
            break
        if not chunk:
            break
        seen += chunk
    return bytes(seen)


def test_on_a_tty_lines_are_readable_and_coloured(runbus: Callable[..., Runbus]) -> None:
    # given `runbus run validator` in a terminal
    master, slave = pty.openpty()
    validator = runbus("validator")
    try:
        validator.start(slave, slave)
        os.close(slave)
        shown = read_pty(master, lambda b: b"worker_started" in b, timeout=60)
        validator.signal(signal.SIGTERM)
        assert validator.wait(30) == 0
        shown += read_pty(master, lambda b: b"service_drained" in b, timeout=10)
    finally:
        os.close(master)
    # then it shows readable, coloured lines, not JSON, FastStream's among them, no hint
    text = shown.replace(b"\r\n", b"\n")
    assert b"worker_started" in text and b"worker_stopped" in text and ESC in text
    assert b"FastStream app started successfully" in text and b"CTRL+C" not in text
    assert not any(line.lstrip().startswith(b"{") for line in text.splitlines())
