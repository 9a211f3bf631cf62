"""`runbus run SERVICE`: start one service in the foreground (SIGINT/SIGTERM drain it)."""

from __future__ import annotations

import asyncio
import importlib
from enum import StrEnum
from typing import Annotated

import typer

from shared.logging import configure_logging
from shared.settings import Settings


class Service(StrEnum):
    """Services `runbus run` can start."""

    validator = "validator"
    persister = "persister"
    coach = "coach"


def register(app: typer.Typer) -> None:
    """Add the commands of this module to the app."""
    app.command("run")(run)


def run(
    service: Annotated[Service, typer.Argument(help="Which service to run.")],
    slot: Annotated[
        int | None, typer.Option(help="Replica slot (part of the stable consumer name).")
    ] = None,
) -> None:
    """Run one service in the foreground until SIGINT/SIGTERM, then drain and exit 0."""
    overrides = {} if slot is None else {"consumer_slot": slot}
    settings = Settings(**overrides)  # type: ignore[arg-type]
    configure_logging(settings)
    module = importlib.import_module(f"services.{service.value}.app")
    asyncio.run(module.build_app(settings).run())
