"""`runbus acl render`: the least-privilege Redis ACL file, for any namespace."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from services.security.acl import read_passwords, render, write_secret
from shared.settings import Settings

acl_app = typer.Typer(help="Least-privilege Redis ACL users.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the commands of this module to the app."""
    app.add_typer(acl_app, name="acl")


@acl_app.command("render")
def render_command(
    namespace: Annotated[
        str | None, typer.Option(help="Namespace (default: RUNBUS_NAMESPACE or runbus).")
    ] = None,
    passwords_dir: Annotated[
        Path | None,
        typer.Option(help="One password file per role (admin, producer, ...); others are off."),
    ] = None,
    generate: Annotated[
        bool, typer.Option("--generate", help="Create missing password files (random, 0600).")
    ] = False,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (0600) instead of stdout.")
    ] = None,
) -> None:
    """Print the Redis ACL file: one user per role, passwords as SHA-256, default user off."""
    if generate and passwords_dir is None:
        raise typer.BadParameter("--generate needs --passwords-dir")
    ns = namespace or Settings().namespace
    passwords = read_passwords(passwords_dir, generate) if passwords_dir else {}
    try:
        text = render(ns, passwords)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if output is None:
        typer.echo(text, nl=False)
    else:
        write_secret(output, text.rstrip("\n"))
