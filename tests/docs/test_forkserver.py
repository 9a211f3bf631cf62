"""The pages' `runbus` shim (`tests.docs.forkserver`) behaves as the console script does: same
output on each stream, same exit status, stdin and the environment passed through."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from shared.settings import REPO_ROOT
from tests.conftest import REDIS_URL
from tests.docs.forkserver import runbus_shim

pytestmark = pytest.mark.integration

#: A command reading stdin and the environment, printing on both streams, exiting 1.
COMMAND = (
    "printf '%s\\n' '42' '{\"project_id\": 7}' | runbus publish; echo \"status $?\"; "
    'runbus publish \'"just a string"\'; echo "status $?"'
)


def _run(path: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNBUS_")}
    env |= {"PATH": path, "RUNBUS_REDIS_URL": REDIS_URL, "RUNBUS_NAMESPACE": "qforkshim"}
    return subprocess.run(
        ["bash", "-c", COMMAND], env=env, cwd=tmp_path, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip


def test_the_shim_prints_and_exits_as_the_console_script(tmp_path: Path) -> None:
    venv_path = f"{REPO_ROOT / '.venv' / 'bin'}:/usr/bin:/bin"
    # given the console script's own output
    real = _run(venv_path, tmp_path)
    # when the same commands run through the shim
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    with runbus_shim(bin_dir, os.environ | {"PATH": f"{bin_dir}:{venv_path}"}):
        assert (bin_dir / "runbus").is_file()
        shimmed = _run(f"{bin_dir}:{venv_path}", tmp_path)
    # then every stream and status is the same
    assert "status 1" in real.stdout and "status 2" in real.stdout, real
    assert (shimmed.stdout, shimmed.stderr) == (real.stdout, real.stderr)
