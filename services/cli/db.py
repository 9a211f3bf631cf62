"""`runbus db ...`: history database migrations and the service role's privileges."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from services.history import HistoryError, open_store
from services.history.postgres import PostgresHistoryStore
from shared.settings import Settings

db_app = typer.Typer(name="db", help="History database administration.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the commands of this module to the app."""
    app.add_typer(db_app)


@db_app.command("migrate")
def migrate() -> None:
    """Apply pending history migrations (run as the schema owner)."""
    settings = Settings()

    async def main() -> list[int]:
        store = open_store(settings)
        await store.open()
        try:
            return await store.migrate()
        finally:
            await store.close()

    try:
        applied = asyncio.run(main())
    except HistoryError as exc:
        typer.echo(f"migration failed: {exc}", err=True)
        raise typer.Exit(2) from exc
    if applied:
        typer.echo("applied migrations: " + ", ".join(str(v) for v in applied))
    else:
        typer.echo("history schema is up to date")


@db_app.command("grant")
def grant(
    role: Annotated[str, typer.Option("--role", help="The service's (existing) database role.")],
) -> None:
    """PostgreSQL: give the service role INSERT and SELECT on the history and the dead-letter
    archive (and the archive's redrive claims), nothing more."""
    settings = Settings()
    store = open_store(settings)
    if not isinstance(store, PostgresHistoryStore):
        typer.echo("db grant applies to PostgreSQL only (SQLite has no roles)", err=True)
        raise typer.Exit(2)

    async def main() -> None:
        await store.open()
        try:
            await store.grant_app_role(role)
        finally:
            await store.close()

    try:
        asyncio.run(main())
    except HistoryError as exc:
        typer.echo(f"grant failed: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"granted INSERT, SELECT on history and the dead-letter archive to {role}")
