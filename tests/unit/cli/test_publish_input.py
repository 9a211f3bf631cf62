"""`runbus publish` says what is wrong with an argument that is not events (exit 2, one line).

Every case is refused before Redis is reached, so these need no server.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli.main import app

# A port nothing listens on: a case that reached Redis would fail with exit 3, not 2.
ENV = {"RUNBUS_REDIS_URL": "redis://127.0.0.1:9/0", "RUNBUS_NAMESPACE": "tpublishargs"}


def publish(*argv: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["publish", *argv], input=stdin, env=ENV)
    return result.exit_code, result.stderr


@pytest.mark.parametrize(
    ("argument", "kind"),
    [('"just a string"', "a string"), ("42", "a number"), ("true", "a boolean"), ("null", "null")],
)
def test_a_json_value_that_is_not_an_object_is_refused(argument: str, kind: str) -> None:
    code, err = publish(argument)
    assert code == 2
    assert err.strip() == (
        f"error: not_an_object: the event must be a JSON object (or an array), not {kind}"
    )


@pytest.mark.parametrize("argument", ["", "   "])
def test_an_empty_argument_is_refused(argument: str) -> None:
    code, err = publish(argument)
    assert code == 2
    assert err.startswith("error: empty_argument: give a JSON event, a file (JSON or NDJSON), or -")


@pytest.mark.parametrize("stdin", ["", "\n  \n"])
def test_empty_stdin_is_refused_as_the_empty_argument_is(stdin: str) -> None:
    code, err = publish("-", stdin=stdin)
    assert code == 2
    assert err.strip() == (
        "error: empty_argument: stdin is empty; give a JSON event, a file (JSON or NDJSON), "
        "or - for stdin"
    )


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "events.ndjson"
    path.write_text("\n")
    code, err = publish(str(path))
    assert code == 2
    assert err.startswith(f"error: empty_argument: {path} is empty")


def test_a_directory_is_refused(tmp_path: Path) -> None:
    code, err = publish(str(tmp_path))
    assert code == 2
    assert err.startswith(f"error: unreadable_source: {tmp_path} is a directory")


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    code, err = publish(str(tmp_path / "nope.json"))
    assert code == 2
    assert err.startswith("error: unreadable_source: ") and "no such file, and not JSON" in err


def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "events.bin"
    path.write_bytes(b"\xff\xfe{}")
    code, err = publish(str(path))
    assert code == 2
    assert err.startswith(f"error: unreadable_source: {path}: not UTF-8 text")


def test_a_scalar_document_on_stdin_is_refused() -> None:
    code, err = publish("-", stdin='"just a string"\n')
    assert code == 2
    assert err.startswith("error: not_an_object:")


def test_every_refusal_is_one_line_without_a_traceback(tmp_path: Path) -> None:
    for argument in ('"x"', "", str(tmp_path), str(tmp_path / "nope")):
        _, err = publish(argument)
        assert len(err.strip().splitlines()) == 1, err
        assert "Traceback" not in err
