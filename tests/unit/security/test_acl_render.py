"""Rendering the ACL file: shipped file in sync, passwords hashed, grants confined to the
namespace, and the `runbus acl render` command."""

from __future__ import annotations

import hashlib
import re
import stat
from pathlib import Path

import pytest
import typer
from pydantic import SecretStr
from typer.testing import CliRunner

from services.cli import security as cli
from services.security.acl import ADMIN, ROLE_NAMES, read_passwords, render, roles
from shared.names import Names
from shared.settings import REPO_ROOT

SHIPPED = REPO_ROOT / "deploy" / "redis" / "users.acl"


def lines_by_user(text: str) -> dict[str, str]:
    return {line.split()[1]: line for line in text.splitlines()}


def test_shipped_file_is_the_rendering_for_the_default_namespace() -> None:
    # The shipped file must be regenerated whenever a role changes
    assert SHIPPED.read_text() == render("runbus")


def test_without_passwords_every_user_is_off() -> None:
    users = lines_by_user(render("runbus"))
    assert set(users) == {"default", ADMIN, *ROLE_NAMES}
    for line in users.values():
        assert " off resetpass " in line and " on " not in line


def test_passwords_are_rendered_as_sha256_and_never_in_clear() -> None:
    password = SecretStr("s3cret with spaces & símbolos")
    text = render("runbus", {"producer": password})
    digest = hashlib.sha256(password.get_secret_value().encode()).hexdigest()
    users = lines_by_user(text)
    assert users["producer"].startswith(f"user producer on #{digest} ")
    assert password.get_secret_value() not in text
    assert " off " in users["validator"]  # no password given: cannot log in
    assert users["default"].startswith("user default off")


def test_an_unknown_role_is_refused() -> None:
    with pytest.raises(ValueError, match="no such role: root"):
        render("runbus", {"root": SecretStr("x")})


@pytest.mark.parametrize(
    "namespace", ["", "a b", "a*", "a?", "[a]", "{a}", "a:b", "a\\b", "x" * 65]
)
def test_namespaces_that_would_widen_a_pattern_are_refused(namespace: str) -> None:
    with pytest.raises(ValueError, match="cannot be rendered"):
        render(namespace)


@pytest.mark.parametrize("namespace", ["runbus", "blue", "team-a_2"])
def test_every_role_starts_from_nothing_and_stays_in_its_namespace(namespace: str) -> None:
    users = lines_by_user(render(namespace))
    for role in ROLE_NAMES:
        line = users[role]
        assert " resetkeys resetchannels -@all +ping " in line
        assert "~*" not in line and "&*" not in line and "@all" not in line.replace("-@all", "")
        assert "allkeys" not in line and "allchannels" not in line and "allcommands" not in line
        for pattern in re.findall(r"(?:%[RW])?~(\S+?)\)?(?=\s|$)", line):
            # the namespace, then ":" (a namespace has no ":"), tagged or not
            assert pattern.startswith((f"{{{namespace}}}:", f"{namespace}:", f"{{{namespace}:")), (
                pattern
            )
        for channel in re.findall(r"&(\S+?)\)?(?=\s|$)", line):
            assert channel == Names(namespace).coach_changes


def test_the_producer_may_only_xadd_to_the_incoming_stream() -> None:
    producer = next(r for r in roles(Names("runbus")) if r.name == "producer")
    assert [(g.commands, g.keys, g.channels) for g in producer.grants] == [
        (("xadd",), ("%W~{runbus}:events",), ())
    ]


def test_the_dashboard_may_only_read_coach_documents_and_subscribe() -> None:
    dashboard = next(r for r in roles(Names("runbus")) if r.name == "dashboard")
    commands = {c for g in dashboard.grants for c in g.commands}
    assert commands == {
        "get", "getrange", "mget", "smembers", "sismember", "subscribe", "unsubscribe"
    }  # fmt: skip
    keys = {k for g in dashboard.grants for k in g.keys}
    assert keys == {"%R~{runbus:coach:*}:doc:*", "%R~runbus:coach:projects"}


def _app() -> typer.Typer:
    app = typer.Typer()
    cli.register(app)

    @app.callback()
    def main() -> None:
        """A test app holding the `acl` group only."""

    return app


def test_cli_generates_passwords_once_and_writes_private_files(tmp_path: Path) -> None:
    # Given an empty passwords directory
    secrets, out = tmp_path / "secrets", tmp_path / "users.acl"
    args = ["acl", "render", "--namespace", "blue", "--passwords-dir", str(secrets)]
    # When the file is rendered twice with --generate
    first = CliRunner().invoke(_app(), [*args, "--generate", "-o", str(out)])
    text = out.read_text()
    second = CliRunner().invoke(_app(), [*args, "--generate"])
    # Then one password file per role exists, owner-only, and the second run reused them
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    assert sorted(p.name for p in secrets.iterdir()) == sorted((ADMIN, *ROLE_NAMES))
    for path in [*secrets.iterdir(), out]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert second.output == text
    passwords = read_passwords(secrets)
    assert all(p.get_secret_value() not in text for p in passwords.values())
    assert " off " not in text.replace("user default off", "")


def test_cli_refuses_generate_without_a_directory_and_bad_namespaces() -> None:
    assert CliRunner().invoke(_app(), ["acl", "render", "--generate"]).exit_code == 2
    bad = CliRunner().invoke(_app(), ["acl", "render", "--namespace", "a*"])
    assert bad.exit_code == 2 and "cannot be rendered" in bad.output


def test_password_files_are_read_without_their_trailing_newline(tmp_path: Path) -> None:
    (tmp_path / "producer").write_text("pw with space\n")
    assert read_passwords(tmp_path) == {"producer": SecretStr("pw with space")}
