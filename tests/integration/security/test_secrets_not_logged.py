"""Secrets come only from the environment or secret files, and never reach the logs.

Real services run as subprocesses (``runbus run validator`` / ``runbus run api``) against a
private ACL-loaded Redis, at DEBUG level with JSON logs; their whole output is then searched
for every secret they were given, in clear and percent-encoded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import orjson
import pytest

from services.security.acl import ADMIN, write_secret
from shared.names import Names
from shared.producer import SyncProducer
from tests.conftest import free_port, wait_for
from tests.integration.security.conftest import AclServer
from tests.integration.security.test_acl_roles import event

pytestmark = pytest.mark.integration
N = Names("runbus")
RUNBUS = Path(sys.executable).parent / "runbus"
API_TOKEN = "tok-3f9c1d2b-never-log-me"


class Service:
    """A `runbus run ...` subprocess whose output goes to a file."""

    def __init__(self, args: list[str], env: dict[str, str], workdir: Path) -> None:
        self.log = workdir / f"{args[-1]}.log"
        # The working directory holds no .env file: nothing but `env` configures the service.
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [str(RUNBUS), *args], env=env, cwd=workdir, stdout=out, stderr=subprocess.STDOUT
            )

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> str:
        """SIGTERM, wait for the drain, return everything it printed."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(20)
        return self.output()


@pytest.fixture
def services() -> Iterator[list[Service]]:
    started: list[Service] = []
    yield started
    for service in started:
        if service.proc.poll() is None:
            service.proc.kill()
            service.proc.wait(10)


def clean_env(**values: str) -> dict[str, str]:
    """This process's environment without any RUNBUS_* variable, plus `values`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNBUS_")}
    return env | {"RUNBUS_LOG_JSON": "true", "RUNBUS_LOG_LEVEL": "DEBUG"} | values


def assert_no_secret(output: str, *secrets: str) -> None:
    """No secret appears, in clear or percent-encoded, anywhere in `output`."""
    for secret in secrets:
        for form in {secret, quote(secret, safe=""), quote(secret)}:
            assert form not in output, "a secret was logged"


def json_lines(output: str) -> list[dict[str, object]]:
    """The structlog JSON records in the output."""
    records = []
    for line in output.splitlines():
        if line.startswith("{"):
            records.append(orjson.loads(line))
    return records


@pytest.mark.parametrize("where", ["url", "secret_file"])
def test_validator_logs_contain_no_password_nor_token(
    acl_server: AclServer, services: list[Service], tmp_path: Path, where: str
) -> None:
    # Given the validator's password in its URL, or in a secret file (RUNBUS_SECRETS_DIR),
    # and an API token in the environment
    password = acl_server.passwords["validator"].get_secret_value()
    secrets_dir = tmp_path / "secrets"
    write_secret(secrets_dir / "runbus_redis_password", password)
    env = clean_env(RUNBUS_NAMESPACE="runbus", RUNBUS_API_TOKEN=API_TOKEN, RUNBUS_BLOCK_MS="100")
    if where == "url":
        env["RUNBUS_REDIS_URL"] = acl_server.url("validator")
    else:
        env["RUNBUS_REDIS_URL"] = acl_server.url("validator", with_password=False)
        env["RUNBUS_SECRETS_DIR"] = str(secrets_dir)
    # When `runbus run validator` handles a valid and an invalid event, then is stopped
    service = Service(["run", "validator"], env, tmp_path)
    services.append(service)
    SyncProducer(acl_server.client("producer"), N).publish_many([event(1), event(2, stage="x")])
    admin = acl_server.client(ADMIN)
    wait_for(lambda: admin.xlen(N.valid) == 1 and admin.xlen(N.dead) == 1, timeout=20)
    output = service.stop()
    # Then it logged (JSON records, the worker's start and stop among them) ...
    events = {r.get("event") for r in json_lines(output)}
    assert {"worker_started", "worker_stopped"} <= events
    assert service.proc.returncode == 0
    # ... and no secret
    assert_no_secret(output, password, API_TOKEN)


def test_a_refused_login_is_logged_without_the_password(
    acl_server: AclServer, services: list[Service], tmp_path: Path
) -> None:
    # Given a validator with a wrong password in its URL
    wrong = "Wr0ng-pa55word-never-log-me"
    url = f"redis://validator:{wrong}@127.0.0.1:{acl_server.port}/0"
    env = clean_env(RUNBUS_REDIS_URL=url, RUNBUS_API_TOKEN=API_TOKEN)
    # When it starts and cannot log in
    service = Service(["run", "validator"], env, tmp_path)
    services.append(service)
    wait_for(lambda: "redis_unavailable" in service.output(), timeout=30)
    output = service.stop()
    # Then the failure is logged, without the password
    assert "invalid username-password pair" in output
    assert_no_secret(output, wrong, API_TOKEN)


def test_api_logs_contain_no_password_nor_token(
    acl_server: AclServer, services: list[Service], tmp_path: Path
) -> None:
    # Given the API running as the `api` user, its password and token in secret files
    secrets_dir = tmp_path / "secrets"
    password = acl_server.passwords["api"].get_secret_value()
    write_secret(secrets_dir / "runbus_redis_password", password)
    write_secret(secrets_dir / "runbus_api_token", API_TOKEN)
    port = free_port()
    env = clean_env(
        RUNBUS_REDIS_URL=acl_server.url("api", with_password=False),
        RUNBUS_SECRETS_DIR=str(secrets_dir),
        RUNBUS_API_PORT=str(port),
        RUNBUS_DATABASE_URL=f"sqlite:///{tmp_path / 'history.db'}",
    )
    service = Service(["run", "api"], env, tmp_path)
    services.append(service)
    base = f"http://127.0.0.1:{port}"

    def serving() -> bool:
        try:
            return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(serving, timeout=30)
    # When a client publishes with the token, another tries a wrong token, and one reads
    good = httpx.post(
        f"{base}/api/events", json=event(1), headers={"Authorization": f"Bearer {API_TOKEN}"}
    )
    bad_token = API_TOKEN[::-1]
    bad = httpx.post(
        f"{base}/api/events", json=event(2), headers={"Authorization": f"Bearer {bad_token}"}
    )
    status = httpx.get(f"{base}/api/status")
    output = service.stop()
    # Then the API worked as the `api` user (published; refused the wrong token) ...
    assert good.status_code in (200, 201, 202), good.text
    assert bad.status_code == 401
    assert status.status_code == 200
    assert acl_server.client(ADMIN).xlen(N.events) == 1
    # ... and neither the password nor any token, good or bad, is in its output or replies
    assert output.strip()
    assert_no_secret(output + good.text + bad.text + status.text, password, API_TOKEN, bad_token)
