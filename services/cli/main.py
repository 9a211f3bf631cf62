"""The `runbus` command line: one typer app, one module per command group."""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperOption

from services.cli import coach, db, dlq, events, history, ops, partitions, run, security


def _flags_show_no_type() -> None:
    """Boolean flags take no value, so their help shows none (``--json``, not ``--json <bool>``).

    typer 0.29's Rich help fills its type column from ``display_type_rich`` for every option,
    flags and ``--help`` included; its plain help already leaves flags and counters bare. This
    applies the plain help's rule to the Rich panels, once for every command.
    """
    typed = TyperOption.display_type_rich

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:  # typer's own Context
        return None if self.is_flag or self.count else typed(self, ctx)

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_show_no_type()

app = typer.Typer(
    name="runbus",
    help="runbus: run events on Redis Streams — validate, dead-letter, persist, coach.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    # Docstrings are wrapped prose: markdown joins their lines into paragraphs at any width.
    rich_markup_mode="markdown",
)
for _module in (events, partitions, dlq, history, coach, db, run, ops, security):
    _module.register(app)
