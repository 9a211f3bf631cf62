"""A dead output pipe (``make run 2>&1 | tee log``, then Ctrl-C kills tee) must not make runbus
unkillable, and no child may outlive its supervisor, the API included."""

from __future__ import annotations

import signal
from collections.abc import Callable

import pytest

from tests.integration.runtime.helpers import Pipe, Runbus, all_gone

pytestmark = pytest.mark.integration

#: validator, persister, coach, api
CHILDREN = 4
#: Generous for two loaded cores; a healthy stop takes about a second.
STOP_DEADLINE_S = 20.0


def test_the_api_stops_on_sigterm_after_its_output_pipe_died(
    runbus: Callable[..., Runbus], pipe: Pipe
) -> None:
    # given `runbus run api` serving, its stdout and stderr on a pipe
    api = runbus("api")
    api.start(pipe.write_fd, pipe.write_fd)
    api.wait_serving()
    # when the pipe's reader dies, then the API is sent SIGTERM
    pipe.close_reader()
    api.signal(signal.SIGTERM)
    # then it stops, cleanly
    assert api.wait(STOP_DEADLINE_S) == 0


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_run_all_stops_with_every_child_after_its_output_pipe_died(
    runbus: Callable[..., Runbus], pipe: Pipe, signum: signal.Signals
) -> None:
    # given `runbus run all` serving, its output on a pipe
    system = runbus("all")
    system.start(pipe.write_fd, pipe.write_fd)
    children = system.wait_serving(children=CHILDREN)
    # when the pipe's reader dies, then the supervisor gets Ctrl-C / SIGTERM
    pipe.close_reader()
    system.signal(signum)
    # then the supervisor and every one of its children stop, the supervisor with 0
    assert system.wait(STOP_DEADLINE_S) == 0
    all_gone(children, STOP_DEADLINE_S)


def test_a_killed_supervisor_takes_every_child_with_it(
    runbus: Callable[..., Runbus], pipe: Pipe
) -> None:
    # given `runbus run all` serving, its output on a pipe whose reader then died
    system = runbus("all")
    system.start(pipe.write_fd, pipe.write_fd)
    children = system.wait_serving(children=CHILDREN)
    pipe.close_reader()
    # when the supervisor is SIGKILLed (no chance to stop anything)
    system.signal(signal.SIGKILL)
    system.wait(STOP_DEADLINE_S)
    # then every child, the API included, exits on its own
    all_gone(children, STOP_DEADLINE_S)
