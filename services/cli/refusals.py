"""How every command refuses input: one line ``error: <code>: <message>`` on stderr, exit 2.

The code is the HTTP API's for the same mistake (`shared.errors.InputError`), so a script can
match on it whichever surface it uses. Exit 1 is kept for "asked fine, the answer is no".
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import NoReturn

import typer

from shared.errors import InputError

#: Exit status of refused input (a usage error, as click's own).
REFUSED = 2


def refuse(code: str, message: str, status: int = REFUSED) -> NoReturn:
    """Print the one line and exit with `status`."""
    typer.echo(f"error: {code}: {message}", err=True)
    raise typer.Exit(status)


@contextlib.contextmanager
def refusing_bad_input() -> Iterator[None]:
    """Turn an `InputError` raised inside into the one line and exit 2."""
    try:
        yield
    except InputError as exc:
        refuse(exc.code, exc.message)
