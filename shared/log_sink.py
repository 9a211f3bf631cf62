"""Where log lines go: an output that never blocks the code that logs, and never raises into it.

A service's stderr is often a pipe (``make run 2>&1 | tee log``, a container runtime). When its
reader dies, every write fails with EPIPE; when its reader stops reading, writes block once the
pipe is full. Either must not reach a signal handler or the event loop: a stop request that
raises or hangs while logging leaves a process nobody can stop. So a log call only enqueues the
line; a daemon thread writes it, stops writing for good at the first error, and a full queue
drops lines (counted) instead of waiting.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import queue
import threading
from typing import Protocol, TextIO

#: Lines held while the output is slower than the logging (then newer lines are dropped).
CAPACITY = 10_000
#: How long a process that exits waits for its last lines to be written.
EXIT_FLUSH_S = 2.0


class Sink(Protocol):
    """Takes whole lines; never blocks for long, never raises."""

    def write(self, line: str) -> None: ...

    def close(self) -> None: ...


class FdSink:
    """Lines to a file descriptor, written by a daemon thread from a bounded queue."""

    def __init__(self, fd: int, capacity: int = CAPACITY) -> None:
        self.fd = fd
        self.dropped = 0
        self.broken = False
        self._queue: queue.Queue[bytes | threading.Event | None] = queue.Queue(capacity)
        self._thread = threading.Thread(target=self._drain, name="log-sink", daemon=True)
        self._thread.start()
        atexit.register(self.flush)

    def write(self, line: str) -> None:
        """Enqueue one line (dropped when the queue is full or the output is gone)."""
        if self.broken:
            return
        try:
            self._queue.put_nowait(line.encode("utf-8", "replace"))
        except queue.Full:
            self.dropped += 1

    def flush(self, timeout: float = EXIT_FLUSH_S) -> bool:
        """Wait up to `timeout` for the lines enqueued so far to be written; True if they were."""
        if not self._thread.is_alive():
            return False
        written = threading.Event()
        try:
            self._queue.put(written, timeout=timeout)
        except queue.Full:
            return False
        return written.wait(timeout)

    def close(self) -> None:
        """Write what is queued (bounded wait), then end the thread."""
        atexit.unregister(self.flush)
        self.flush()
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=EXIT_FLUSH_S)

    def _drain(self) -> None:
        while (item := self._queue.get()) is not None:
            if isinstance(item, threading.Event):
                item.set()
            elif not self.broken:
                self._write_all(item)

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.fd, view) :]
        except OSError:  # EPIPE (the reader is gone), EBADF, ENOSPC: this output is lost
            self.broken = True


class StreamSink:
    """Lines to a stream without a file descriptor (a test's captured stderr), synchronously."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, line: str) -> None:
        """Write and flush one line; a failing stream is ignored."""
        with contextlib.suppress(OSError, ValueError):
            self.stream.write(line)
            self.stream.flush()

    def close(self) -> None:
        """Nothing is buffered here."""


def sink_for(stream: TextIO) -> Sink:
    """The sink for `stream`: its file descriptor through a thread when it has one."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError):  # io.UnsupportedOperation is both
        return StreamSink(stream)
    return FdSink(fd)
