"""Logging to an output nobody reads neither raises nor blocks (a stop request depends on it)."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator

import orjson
import pytest
import structlog

from shared.log_sink import FdSink
from shared.logging import configure_logging, get_logger
from shared.settings import Settings


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    root = logging.getLogger()
    for handler in list(root.handlers):
        if type(handler).__name__ == "SinkHandler":
            root.removeHandler(handler)
            handler.close()
    structlog.reset_defaults()


def test_logging_to_a_pipe_whose_reader_is_gone_does_not_raise() -> None:
    # given logging configured on a pipe whose reader then closed
    read, write = os.pipe()
    with os.fdopen(write, "w") as stream:
        configure_logging(Settings(log_json=True, _env_file=None), stream)
        os.close(read)
        # when a record is logged, by us and by a library
        get_logger("test").info("after_the_reader_died")
        logging.getLogger("some.library").warning("me too")
        # then nothing is raised, and the sink has given up on that output
        handler = next(h for h in logging.getLogger().handlers if hasattr(h, "sink"))
        sink = handler.sink
        assert isinstance(sink, FdSink)
        sink.flush(timeout=5)
        assert sink.broken


def test_logging_to_a_pipe_nobody_reads_does_not_block() -> None:
    # given a sink on a pipe that nobody reads, already full
    read, write = os.pipe()
    os.set_blocking(write, False)
    with contextlib.suppress(BlockingIOError):
        while True:
            os.write(write, b"x" * 4096)
    os.set_blocking(write, True)
    sink = FdSink(write, capacity=100)
    try:
        # when far more than the pipe holds is logged
        started = time.monotonic()
        for n in range(20_000):
            sink.write(f"line {n:06d} {'x' * 100}\n")
        # then every call returned at once, and the surplus was dropped, not waited for
        assert time.monotonic() - started < 2.0
        assert sink.dropped > 0
        assert sink.flush(timeout=0.2) is False
    finally:
        os.close(read)  # the writer thread gets EPIPE and stops
        sink.close()
        os.close(write)


def test_records_of_the_stdlib_and_of_structlog_share_one_json_format() -> None:
    read, write = os.pipe()
    with os.fdopen(write, "w") as stream:
        configure_logging(Settings(log_json=True, _env_file=None), stream)
        get_logger("runbus.test").info("ours", n=1)
        logging.getLogger("uvicorn.error").info("Uvicorn running on %s (Press CTRL+C to quit)", "x")
        handler = next(h for h in logging.getLogger().handlers if hasattr(h, "sink"))
        handler.close()
    with os.fdopen(read, "rb") as pipe_out:
        records = [orjson.loads(line) for line in pipe_out.read().splitlines()]
    assert [(r["logger"], r["event"], r["level"]) for r in records] == [
        ("runbus.test", "ours", "info"),
        ("uvicorn.error", "Uvicorn running on x", "info"),
    ]
