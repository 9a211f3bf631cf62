"""`runbus acl render`: the least-privilege Redis ACL file, for any namespace and partitions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from services.security.acl import read_passwords, render, write_secret
from shared.names import MAX_PARTITIONS
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
    partitions: Annotated[
        int | None,
        typer.Option(
            min=1, max=MAX_PARTITIONS, help="Partitions (default: RUNBUS_PARTITIONS or 1)."
        ),
    ] = None,
    cluster: Annotated[
        bool | None,
        typer.Option(
            "--cluster/--no-cluster",
            help="For Redis Cluster nodes: clients may map the slots (default: "
            "RUNBUS_REDIS_CLUSTER).",
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (0600) instead of stdout.")
    ] = None,
) -> None:
    """Print the Redis ACL file: one user per role, passwords as SHA-256, default user off.

    Every partition's streams are named explicitly; the same file loads on every cluster node.
    """
    if generate and passwords_dir is None:
        raise typer.BadParameter("--generate needs --passwords-dir")
    settings = Settings()
    ns = namespace or settings.namespace
    count = settings.partitions if partitions is None else partitions
    on_cluster = settings.redis_cluster if cluster is None else cluster
    passwords = read_passwords(passwords_dir, generate) if passwords_dir else {}
    try:
        text = render(ns, passwords, count, on_cluster)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if output is None:
        typer.echo(text, nl=False)
    else:
        write_secret(output, text.rstrip("\n"))
