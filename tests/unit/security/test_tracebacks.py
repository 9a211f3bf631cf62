"""Logged exceptions never print local variables: they hold URLs with passwords and tokens."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog

from shared.logging import configure_logging, get_logger
from shared.settings import Settings

SECRET = "hunter2-in-a-local-variable"


@pytest.fixture(autouse=True)
def _restore_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def _fail_with_a_secret_in_scope() -> None:
    redis_url = f"redis://validator:{SECRET}@127.0.0.1:6379/0"
    headers = {"authorization": f"Bearer {SECRET}"}
    raise ConnectionError(f"cannot reach {len(redis_url)} / {len(headers)}")


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "console"])
def test_a_logged_traceback_shows_no_local_variables(
    as_json: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given logging configured as a service does (JSON, or the console renderer of a TTY)
    configure_logging(Settings(log_json=as_json, _env_file=None))
    log = get_logger("test")
    # When an exception is logged with its traceback while a secret sits in a local variable
    try:
        _fail_with_a_secret_in_scope()
    except ConnectionError:
        log.exception("request_failed")
    err = capsys.readouterr().err
    # Then the traceback is there, the secret is not
    assert "_fail_with_a_secret_in_scope" in err and "ConnectionError" in err
    assert SECRET not in err
