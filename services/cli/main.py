"""The `runbus` command line: one typer app, one module per command group."""

from __future__ import annotations

import typer

from services.cli import coach, db, dlq, events, history, ops, run, security

app = typer.Typer(
    name="runbus",
    help="runbus: run events on Redis Streams — validate, dead-letter, persist, coach.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
for _module in (events, dlq, history, coach, db, run, ops, security):
    _module.register(app)
