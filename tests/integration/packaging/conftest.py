"""Fixtures of the packaging story: the wheel, built from this checkout, in a venv of its own.

Nothing is downloaded. The wheel is built with the dev venv's own hatchling (``uv build
--no-build-isolation``), and the clean venv gets the runtime dependencies at exactly the
versions of uv.lock (``uv export``) from uv's cache, which ``make install`` filled
(``uv pip install --offline --no-deps``); ``uv pip check`` then proves they satisfy the
wheel's own requirements.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from shared.settings import REPO_ROOT

UV = Path(sys.executable).with_name("uv")

#: A service's own top-level package that happens to be called ``shared``.
SERVICE_PYPROJECT = """\
[project]
name = "acme-service"
version = "1.0"

[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[tool.hatch.build.targets.wheel]
packages = ["shared"]
"""
SERVICE_SHARED = 'OWNER = "acme"\n'


@dataclass(frozen=True)
class ProducerVenv:
    """A venv with the runbus wheel and the service's own ``shared`` installed."""

    wheel: Path
    python: Path

    @property
    def bin(self) -> Path:
        """The venv's scripts directory (``runbus`` is there)."""
        return self.python.parent


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without anything that points at the dev venv or a bus."""
    drop = {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "UV_PROJECT_ENVIRONMENT"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("RUNBUS_")}
    return {**env, **extra}


def run(*argv: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run a command to completion; its stdout. Fails the test with its output otherwise."""
    proc = subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"{argv} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
    return proc.stdout


def build_wheel(source: Path, out: Path) -> Path:
    """The wheel of the project at `source`, built offline with the dev venv's hatchling."""
    run(UV, "build", "--wheel", "--no-build-isolation", "--offline", "--python", sys.executable,
        "--out-dir", out, source, cwd=source)  # fmt: skip
    (wheel,) = out.glob("*.whl")
    return wheel


def service_wheel(tmp: Path) -> Path:
    """The wheel of a tiny service project whose own package is named ``shared``."""
    project = tmp / "acme-service"
    (project / "shared").mkdir(parents=True)
    (project / "pyproject.toml").write_text(SERVICE_PYPROJECT)
    (project / "shared" / "__init__.py").write_text(SERVICE_SHARED)
    return build_wheel(project, tmp / "acme-dist")


@pytest.fixture(scope="module")
def producer_venv(tmp_path_factory: pytest.TempPathFactory) -> ProducerVenv:
    """Build both wheels, and install them with the locked dependencies into a new venv."""
    tmp = tmp_path_factory.mktemp("packaging")
    wheel = build_wheel(REPO_ROOT, tmp / "dist")
    requirements = tmp / "requirements.txt"
    run(UV, "export", "--frozen", "--no-dev", "--no-emit-project", "--no-header", "--no-hashes",
        "--no-annotate", "-q", "-o", requirements, cwd=REPO_ROOT)  # fmt: skip
    run(UV, "venv", "-q", "--python", sys.executable, tmp / "venv", cwd=tmp)
    python = tmp / "venv" / "bin" / "python"
    # Not --offline: uv resolves `name==version` from the index's metadata, which `make
    # install` (uv sync from the lock) never caches; the wheels themselves come from uv's cache.
    run(UV, "pip", "install", "-q", "--no-deps", "--python", python,
        "-r", requirements, wheel, service_wheel(tmp), cwd=tmp)  # fmt: skip
    run(UV, "pip", "check", "-q", "--python", python, cwd=tmp)
    return ProducerVenv(wheel=wheel, python=python)
