"""`make run` on a machine where no Redis answers and none can be started here.

(Where one can be started, `test_run_all.test_end_to_end_on_a_fresh_machine_with_sqlite`
shows it happen.)"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.integration.e2e.helpers import RUNBUS, system_env

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("rediss://127.0.0.1:{port}/0", None),  # TLS: not one we may start
        ("redis://127.0.0.1:{port}/0", "/nonexistent"),  # no redis-server on the PATH
    ],
)
def test_without_redis_one_clear_line_says_how_to_get_one(
    tmp_path: Path, namespace: str, url: str, path: str | None
) -> None:
    env = system_env(
        namespace, url.format(port=free_port()), "sqlite:///x.db", free_port(), tmp_path
    )
    if path is not None:
        env["PATH"] = path
    result = subprocess.run(
        [str(RUNBUS), "run", "all", "--ensure-redis"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "no Redis answers" in lines[0] and "RUNBUS_REDIS_URL" in lines[0]
