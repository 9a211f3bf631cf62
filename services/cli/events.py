"""`runbus publish` and `runbus taxonomy`: the producer's side of the command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import redis
import typer
from rich.console import Console
from rich.table import Table

from services.cli.refusals import refuse
from shared.connections import sync_redis
from shared.errors import InputError
from shared.producer import InvalidEvent, SyncProducer
from shared.settings import Settings


def register(app: typer.Typer) -> None:
    """Add the commands of this module to the app."""
    app.command("publish")(publish)
    app.command("taxonomy")(taxonomy)


#: What the argument may be, for the messages that refuse one.
SOURCES = "a JSON event, a file (JSON or NDJSON), or - for stdin"
JSON_KINDS = {str: "a string", int: "a number", float: "a number", bool: "a boolean"}


class BadInput(InputError):
    """The argument or the input is not events (`code` says how): one line, exit 2."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, field="source")
        self.code = code


def _looks_like_json(text: str) -> bool:
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return text.lstrip().startswith(("{", "["))
    return True


def _read_text(source: str | None) -> str:
    """The text to publish: stdin, the JSON argument itself, or the file it names."""
    if source is None or source == "-":
        return sys.stdin.read()
    if not source.strip():
        raise BadInput("empty_argument", f"give {SOURCES}")
    if _looks_like_json(source):  # before the file system: `{...}` or `"x"` is never a path
        return source
    path = Path(source)
    if path.is_dir():
        raise BadInput("unreadable_source", f"{source} is a directory; give {SOURCES}")
    if not path.exists():
        raise BadInput("unreadable_source", f"{source}: no such file, and not JSON; give {SOURCES}")
    return path.read_text(encoding="utf-8")


def _parse_events(text: str) -> list[Any]:
    """One document (an event, possibly indented, or an array of events), else NDJSON lines."""
    stripped = text.strip()
    try:
        whole = orjson.loads(stripped)
    except orjson.JSONDecodeError:
        return [orjson.loads(line) for line in stripped.splitlines() if line.strip()]
    if isinstance(whole, list):
        return whole
    if not isinstance(whole, dict):
        kind = JSON_KINDS.get(type(whole), "null")
        raise BadInput(
            "not_an_object", f"the event must be a JSON object (or an array), not {kind}"
        )
    return [whole]


def _read_events(source: str | None) -> list[Any]:
    where = "stdin" if source in (None, "-") else source
    try:
        text = _read_text(source)
    except UnicodeDecodeError as exc:
        raise BadInput("unreadable_source", f"{where}: not UTF-8 text ({exc.reason})") from exc
    if not text.strip():  # as the empty argument is: nothing to publish is a mistake
        raise BadInput("empty_argument", f"{where} is empty; give {SOURCES}")
    return _parse_events(text)


def publish(
    source: Annotated[
        str | None, typer.Argument(help=f"{SOURCES[0].upper()}{SOURCES[1:]}.")
    ] = None,
    no_validate: Annotated[
        bool, typer.Option("--no-validate", help="Send as is; the validator will judge.")
    ] = False,
) -> None:
    """Publish events, each to the incoming stream of its run's partition; prints one entry id
    per event."""
    settings = Settings()
    try:
        events = _read_events(source)
    except orjson.JSONDecodeError as exc:
        refuse("malformed_json", str(exc))
    except OSError as exc:
        refuse("unreadable_source", f"{source}: {exc.strerror or exc}")
    except BadInput as exc:
        refuse(exc.code, exc.message)
    producer = SyncProducer(
        sync_redis(settings), settings.names, None if no_validate else settings.taxonomy
    )
    failed = 0
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            failed += 1
            typer.echo(f"event {index}: rejected: schema_violation:$ (not an object)", err=True)
            continue
        try:
            typer.echo(producer.publish(event))
        except redis.RedisError as exc:
            typer.echo(f"cannot reach Redis at {_safe_url(settings.redis_url)}: {exc}", err=True)
            raise typer.Exit(3) from exc
        except InvalidEvent as exc:
            failed += 1
            typer.echo(f"event {index}: rejected: {', '.join(exc.errors)}", err=True)
    if failed:
        raise typer.Exit(1)


def taxonomy(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the whole taxonomy and its version."""
    settings = Settings()
    doc = settings.taxonomy.as_dict()
    if as_json:
        typer.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
        return
    console = Console()
    console.print(
        f"[bold]taxonomy {doc['version']}[/] (cross-stage codes: {doc['cross_stage_policy']})"
    )
    table = Table("stage", "reason code", "info only", "description")
    for stage, codes in doc["reason_codes"].items():
        for row in codes:
            table.add_row(stage, row["code"], "yes" if row["info_only"] else "", row["description"])
    console.print(table)
    pulse = Table("pulse event type", "severity")
    for event_type, severity in doc["pulse_event_types"].items():
        pulse.add_row(event_type, severity)
    console.print(pulse)


def _safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    head, sep, tail = url.rpartition("@")
    if not sep:
        return url
    scheme, _, _creds = head.partition("://")
    return f"{scheme}://***@{tail}"
