"""The ``runbus`` console script: the same typer app in the repository and in the wheel."""

from services.cli.main import app

__all__ = ["app"]
