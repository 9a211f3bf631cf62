"""Runtime fixtures: `runbus run ...` processes on this test's namespace, all killed afterwards."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.integration.runtime.helpers import Pipe, Runbus


@pytest.fixture
def runbus(
    namespace: str, tmp_path: Path, sync_client: redis.Redis
) -> Iterator[Callable[..., Runbus]]:
    """Factory of `Runbus` processes (not started) for this test's namespace and tmp_path."""
    made: list[Runbus] = []

    def make(*args: str, **kwargs: Any) -> Runbus:
        process = Runbus(args, namespace, tmp_path, **kwargs)
        made.append(process)
        return process

    yield make
    for process in made:
        process.kill_all()


@pytest.fixture
def pipe() -> Iterator[Pipe]:
    """A pipe for a process's stdout and stderr, its reader closed when the test says so."""
    created = Pipe()
    yield created
    created.close()
