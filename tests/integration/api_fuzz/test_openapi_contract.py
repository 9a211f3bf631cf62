"""The OpenAPI document is a contract: schemathesis, all of its checks, against the live API.

Positive and negative data for every operation (examples, coverage, fuzzing and stateful
phases): no 5xx, no undocumented status code, no response outside its schema, no valid request
refused, no invalid one accepted. `make test` runs a bounded, deterministic pass;
`make test-api-fuzz` a long random one (``RUNBUS_API_FUZZ_FULL=1``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.api_fuzz.conftest import CONFIG, TOKEN
from tests.live_api import LiveApi

pytestmark = pytest.mark.integration

FULL = os.environ.get("RUNBUS_API_FUZZ_FULL") == "1"


def _schemathesis_args(api: LiveApi, report: Path) -> list[str]:
    # Every check is on by default (``--checks all`` would also override the one exception the
    # config file makes for POST /api/events).
    schemathesis = str(Path(sys.executable).with_name("schemathesis"))
    args = [
        schemathesis, "--config-file", str(CONFIG), "run", f"{api.base_url}/openapi.json",
        "--mode", "all",
        "--header", f"Authorization: Bearer {TOKEN}",
        "--workers", "1",
        "--request-timeout", "10",
        "--report", "junit", "--report-junit-path", str(report),
        "--no-color",
    ]  # fmt: skip
    if FULL:
        return [*args, "--max-examples", "400", "--generation-database", "none"]
    # Bounded in `make test`, with deterministic generation (which takes no seed; the number of
    # cases still moves a little between runs: 1,740 and 1,758 in two runs of one commit).
    return [*args, "--max-examples", "25", "--generation-deterministic"]


def test_schemathesis_finds_nothing_against_the_live_api(live_api: LiveApi, tmp_path: Path) -> None:
    # Given the live API on a seeded namespace (events, dead letters, a token)
    report = tmp_path / "schemathesis.xml"
    # When schemathesis runs every check on every operation
    started = time.monotonic()
    run = subprocess.run(
        _schemathesis_args(live_api, report),
        capture_output=True,
        text=True,
        cwd=tmp_path,  # its replay store (.schemathesis/) stays out of the work tree
        timeout=900 if FULL else 240,
        check=False,
    )
    elapsed = time.monotonic() - started
    # Then it finds nothing (its summary is printed either way: cases, operations, time)
    summary = run.stdout[-6000:]
    print(f"schemathesis: exit {run.returncode} in {elapsed:.1f}s\n{summary}")
    assert run.returncode == 0, f"schemathesis found problems:\n{run.stdout}\n{run.stderr}"
