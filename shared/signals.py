"""SIGINT and SIGTERM as a stop request: what every long-running runbus process installs.

Here, below every service, because the API (serving alone) and the supervisor of
``runbus run all`` both stop this way, and neither may import the other.
"""

from __future__ import annotations

import asyncio
import signal

from shared.logging import get_logger

log = get_logger("runbus.runtime")


def install_stop_signals(stop: asyncio.Event) -> None:
    """SIGINT and SIGTERM set `stop` (once; later signals are only logged)."""
    loop = asyncio.get_running_loop()

    def handle(signum: int) -> None:
        stopping = stop.is_set()
        stop.set()  # first: logging is best effort, the stop request is not
        event = "already_stopping" if stopping else "stopping"
        log.info(event, signal=signal.Signals(signum).name)

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, handle, signum)
