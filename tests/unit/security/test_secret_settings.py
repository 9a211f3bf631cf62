"""Secrets from the environment or from files; how the Redis URL, password and CA combine."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from pydantic import SecretStr

from shared.connections import redis_url, sync_redis
from shared.settings import Settings


def settings(**values: object) -> Settings:
    return Settings(**values, _env_file=None)  # type: ignore[arg-type]


def test_secrets_are_read_from_files_in_the_secrets_dir(tmp_path: Path) -> None:
    # Docker/Kubernetes style: one file per setting, named after its variable, any case
    (tmp_path / "RUNBUS_REDIS_PASSWORD").write_text("from-file\n")
    (tmp_path / "runbus_api_token").write_text("token-from-file")
    loaded = settings(secrets_dir=tmp_path)
    assert loaded.redis_password == SecretStr("from-file")
    assert loaded.api_token == SecretStr("token-from-file")


def test_the_secrets_dir_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "runbus_api_token").write_text("token-from-file")
    monkeypatch.setenv("RUNBUS_SECRETS_DIR", str(tmp_path))
    assert settings().api_token == SecretStr("token-from-file")
    assert settings().secrets_dir == tmp_path
    # and an environment variable wins over the file
    monkeypatch.setenv("RUNBUS_API_TOKEN", "from-env")
    assert settings().api_token == SecretStr("from-env")


def test_secrets_are_masked_in_the_settings_repr(tmp_path: Path) -> None:
    loaded = settings(redis_password="hunter2", api_token="tok-abc")
    assert "hunter2" not in repr(loaded) and "tok-abc" not in repr(loaded)
    assert "hunter2" not in str(loaded.model_dump())


@pytest.mark.parametrize(
    ("url", "password", "expected"),
    [
        ("redis://u:old@h:1/0", None, "redis://u:old@h:1/0"),
        ("redis://u:old@h:1/0", "new", "redis://u@h:1/0"),
        ("redis://:old@h:1/0", "new", "redis://h:1/0"),
        ("rediss://u:p%40ss@h:1/0?ssl_cert_reqs=required", "new", "rediss://u@h:1/0?ssl_cert_reqs=required"),
        ("redis://u@h:1/0", "new", "redis://u@h:1/0"),
    ],
)  # fmt: skip
def test_the_password_setting_replaces_the_urls_password(
    url: str, password: str | None, expected: str
) -> None:
    assert redis_url(settings(redis_url=url, redis_password=password)) == expected


def test_the_client_uses_the_setting_password_and_the_urls_user() -> None:
    client = sync_redis(settings(redis_url="redis://bob:old@h:1/0", redis_password="new"))
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["username"], kwargs["password"]) == ("bob", "new")


def test_a_ca_file_turns_on_certificate_checks_for_rediss(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    client = sync_redis(settings(redis_url="rediss://h:1/0", redis_ca_file=ca))
    assert client.connection_pool.connection_class is redis.SSLConnection
    assert client.connection_pool.connection_kwargs["ssl_ca_certs"] == str(ca)


def test_a_ca_file_without_tls_is_refused(tmp_path: Path) -> None:
    # A CA file with redis:// would look like TLS while sending the password in clear
    with pytest.raises(ValueError, match="not rediss://"):
        sync_redis(settings(redis_url="redis://h:1/0", redis_ca_file=tmp_path / "ca.pem"))
