"""Private redis-servers loaded with the runbus ACL file (and optionally TLS).

The machine's shared Redis is never touched: each test that needs ACL users starts its own
redis-server on a free loopback port with ``--aclfile`` pointing at a file rendered by
`services.security.acl.render`, with a fresh random password per role (including characters
that must be percent-encoded in a URL, so passwords-in-URLs are exercised for real).
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

import pytest
import redis
from pydantic import SecretStr
from redis.backoff import NoBackoff
from redis.retry import Retry

from services.security.acl import ADMIN, ROLE_NAMES, render
from shared.settings import Settings
from tests.conftest import free_port, wait_for

Fields = dict[bytes, bytes]


@dataclass
class Tls:
    """A throw-away CA and a server certificate for 127.0.0.1, made with openssl."""

    ca: Path
    cert: Path
    key: Path


@dataclass
class AclServer:
    """A redis-server whose users are the runbus roles."""

    workdir: Path
    namespace: str
    passwords: dict[str, SecretStr]
    tls: Tls | None = None
    acl_file: Path | None = None
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def url(self, role: str, with_password: bool = True) -> str:
        """URL of `role`, its password percent-encoded inside (rediss:// when TLS is on)."""
        scheme = "rediss" if self.tls else "redis"
        secret = quote(self.passwords[role].get_secret_value(), safe="")
        auth = f"{role}:{secret}@" if with_password else f"{role}@"
        return f"{scheme}://{auth}127.0.0.1:{self.port}/0"

    def settings(self, role: str, **overrides: Any) -> Settings:
        """Settings of a service running as `role`."""
        values: dict[str, Any] = {
            "redis_url": self.url(role),
            "namespace": self.namespace,
            "claim_idle_ms": 200,
            "janitor_interval_s": 0.2,
            "trim_interval_s": 0.2,
            "block_ms": 100,
            "spool_path": self.workdir / f"spool-{role}.db",
            "database_url": f"sqlite:///{self.workdir / 'history.db'}",
            "redis_ca_file": self.tls.ca if self.tls else None,
        }
        return Settings(**{**values, **overrides, "_env_file": None})

    def client(self, role: str, **options: Any) -> redis.Redis:
        """A blocking client logged in as `role`."""
        if self.tls:
            options.setdefault("ssl_ca_certs", str(self.tls.ca))
        return redis.Redis.from_url(self.url(role), **options)

    def start(self) -> None:
        """Start redis-server with the ACL file; wait until the admin can PING."""
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("security tests need a redis-server binary (apt-get install redis-server)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.acl_file is None:
            self.acl_file = self.workdir / "users.acl"
            self.acl_file.write_text(render(self.namespace, self.passwords))
        args = [binary, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        args += ["--dir", str(self.workdir), "--aclfile", str(self.acl_file)]
        args += self._port_args()
        log = (self.workdir / "redis.log").open("wb")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        if ADMIN in self.passwords:
            wait_for(self._admin_answers, timeout=10)

    def _port_args(self) -> list[str]:
        if self.tls is None:
            return ["--port", str(self.port)]
        return [
            "--port", "0", "--tls-port", str(self.port),
            "--tls-cert-file", str(self.tls.cert), "--tls-key-file", str(self.tls.key),
            "--tls-ca-cert-file", str(self.tls.ca), "--tls-auth-clients", "no",
        ]  # fmt: skip

    def _admin_answers(self) -> bool:
        client = self.client(ADMIN, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False
        finally:
            client.close()

    def stop(self) -> None:
        """Kill the server."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


def rows(client: redis.Redis, stream: str, **range_args: Any) -> list[tuple[bytes, Fields]]:
    """XRANGE, typed: (entry id, fields) pairs."""
    return cast(list[tuple[bytes, Fields]], client.xrange(stream, **range_args))


def command(client: redis.Redis, *args: str) -> Any:
    """A raw command (ACL DRYRUN, ACL LIST, ...)."""
    return client.execute_command(*args)  # type: ignore[no-untyped-call]


def one_shot(port: int, **options: Any) -> redis.Redis:
    """A client that does not retry: redis-py retries a refused login with backoff (seconds)."""
    return redis.Redis(port=port, retry=Retry(NoBackoff(), 0), **options)


def make_passwords() -> dict[str, SecretStr]:
    """A random password per role, with characters a URL must percent-encode."""
    return {name: SecretStr(secrets.token_urlsafe(18) + "@:/%#?") for name in (ADMIN, *ROLE_NAMES)}


#: P-256 keys: as good as RSA here, and generated in milliseconds.
EC_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


def make_tls(directory: Path) -> Tls:
    """A CA and a server certificate (SAN 127.0.0.1) signed by it."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("TLS tests need the openssl binary")
    directory.mkdir(parents=True, exist_ok=True)
    tls = Tls(directory / "ca.crt", directory / "server.crt", directory / "server.key")
    csr, ca_key, ext = directory / "server.csr", directory / "ca.key", directory / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    steps = [
        ["req", "-x509", *EC_KEY, "-days", "1", "-subj", "/CN=runbus-test-ca",
         "-keyout", str(ca_key), "-out", str(tls.ca)],
        ["req", *EC_KEY, "-subj", "/CN=127.0.0.1", "-keyout", str(tls.key), "-out", str(csr)],
        ["x509", "-req", "-in", str(csr), "-CA", str(tls.ca), "-CAkey", str(ca_key),
         "-CAcreateserial", "-days", "1", "-extfile", str(ext), "-out", str(tls.cert)],
    ]  # fmt: skip
    for step in steps:
        subprocess.run([openssl, *step], check=True, capture_output=True)
    return tls


@pytest.fixture
def acl_servers(tmp_path: Path) -> Iterator[Callable[..., AclServer]]:
    """Factory of private ACL-loaded redis-servers, all killed at the end of the test."""
    servers: list[AclServer] = []

    def make(
        namespace: str = "runbus",
        tls: bool = False,
        passwords: dict[str, SecretStr] | None = None,
        acl_file: Path | None = None,
    ) -> AclServer:
        workdir = tmp_path / f"redis-acl-{len(servers)}"
        certs = make_tls(workdir / "tls") if tls else None
        chosen = make_passwords() if passwords is None else passwords
        server = AclServer(workdir, namespace, chosen, certs, acl_file)
        servers.append(server)
        server.start()
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def acl_server(acl_servers: Callable[..., AclServer]) -> AclServer:
    """One ACL-loaded redis-server for the default namespace `runbus`."""
    return acl_servers()
