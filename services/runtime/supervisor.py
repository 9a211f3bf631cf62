"""The supervisor of `runbus run all`: one child process per service, kept alive, stopped cleanly.

Children run in their own process group, so a Ctrl-C in the terminal reaches only the
supervisor, which then forwards exactly one SIGTERM to each child (they drain their batch in
hand and acknowledge it) and waits for them. On Linux each child also asks the kernel for a
SIGTERM should the supervisor die without stopping it, so no orphan keeps consuming (or
serving: the API too). That SIGTERM only works because a stop request never depends on
logging: the handler sets the stop flag first, and a log line to a dead pipe neither raises nor
blocks (`shared.log_sink`).

A child that exits while no stop was requested is restarted after a jittered exponential
backoff (`logic.backoff_s`, reset once it has run for a while); every restart is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence

from services.runtime.logic import ChildSpec, backoff_s, next_failures
from shared.consumer import sleep_unless_stopped
from shared.logging import get_logger

log = get_logger("runbus.runtime")

_PR_SET_PDEATHSIG = 1
#: Loaded here, not between fork and exec: the dynamic loader's lock may be held by another
#: thread at fork time. (None: the process's own symbols, libc among them, glibc or musl.)
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
#: A child that exits 0 drained; one killed by our SIGTERM before it installed its handlers
#: (still importing) had nothing in flight.
CLEAN_EXIT_CODES: frozenset[int] = frozenset({0, -signal.SIGTERM})


def die_with_parent(parent: int | None = None) -> None:
    """Ask Linux to SIGTERM this process when its parent dies (a ``preexec_fn``).

    Runs between fork and exec. A `parent` (the pid that forked) gone before the request was
    made would never signal, so the child then stops itself at once.
    """
    if _LIBC is None:
        return
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if parent is not None and os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)


def dies_with_this_process() -> Callable[[], None]:
    """The ``preexec_fn`` of a child that must not outlive this process."""
    return functools.partial(die_with_parent, os.getpid())


class Supervisor:
    """Starts, restarts and stops a set of child processes."""

    def __init__(
        self,
        specs: Sequence[ChildSpec],
        *,
        env: Mapping[str, str] | None = None,
        stop_timeout_s: float = 30.0,
        stable_s: float = 60.0,
        backoff: Callable[[int], float] = backoff_s,
    ) -> None:
        self.specs = list(specs)
        self.env = dict(os.environ if env is None else env)
        self.stop_timeout_s = stop_timeout_s
        self.stable_s = stable_s
        self.backoff = backoff
        self.pids: dict[str, int] = {}
        self.restarts: dict[str, int] = {spec.name: 0 for spec in self.specs}
        self.started = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> int:
        """Run every child until `stop` is set; 0 when every child stopped cleanly."""
        tasks = [asyncio.create_task(self._keep(spec, stop)) for spec in self.specs]
        self.started.set()
        codes = await asyncio.gather(*tasks)
        failed = {
            spec.name: code
            for spec, code in zip(self.specs, codes, strict=True)
            if code not in CLEAN_EXIT_CODES
        }
        if failed:
            log.error("children_failed_to_stop_cleanly", exit_codes=failed)
            return 1
        log.info("all_children_stopped")
        return 0

    async def _keep(self, spec: ChildSpec, stop: asyncio.Event) -> int:
        """Keep one child running until `stop`; returns its final exit code."""
        failures = 0
        while True:
            proc = await self._spawn(spec)
            started = time.monotonic()
            code = await _wait_or_stop(proc, stop)
            if code is None:  # stop requested while it runs
                return await self._terminate(spec, proc)
            if stop.is_set():
                return code
            failures = next_failures(failures, time.monotonic() - started, stable_s=self.stable_s)
            delay = self.backoff(failures)
            self.restarts[spec.name] += 1
            log.warning("child_exited_restarting", child=spec.name, exit_code=code,
                        restart_in_s=round(delay, 2), failures=failures)  # fmt: skip
            if await sleep_unless_stopped(stop, delay):
                return code

    async def _spawn(self, spec: ChildSpec) -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            *spec.argv, env=self.env, process_group=0, preexec_fn=dies_with_this_process()
        )
        self.pids[spec.name] = proc.pid
        log.info("child_started", child=spec.name, pid=proc.pid)
        return proc

    async def _terminate(self, spec: ChildSpec, proc: asyncio.subprocess.Process) -> int:
        """SIGTERM, wait for the drain, SIGKILL after the timeout."""
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(proc.wait(), self.stop_timeout_s)
        except TimeoutError:
            log.error("child_did_not_stop_killing", child=spec.name, pid=proc.pid)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            code = await proc.wait()
            return code or 1
        log.info("child_stopped", child=spec.name, exit_code=code)
        return code


async def _wait_or_stop(proc: asyncio.subprocess.Process, stop: asyncio.Event) -> int | None:
    """The child's exit code if it exits first; None if `stop` is set first."""
    exited = asyncio.create_task(proc.wait())
    stopped = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({exited, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if exited in done:
        return exited.result()
    exited.cancel()
    return None
