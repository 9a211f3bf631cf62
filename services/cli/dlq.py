"""`runbus dlq ...`: tail, stats, show, redrive and purge dead letters."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the commands of this module to the app."""
