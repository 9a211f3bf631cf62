"""`runbus dlq ...` (tail, stats, show, redrive, purge dead letters) and `runbus status`.

Thin commands over `services.ops`: parse options, call the library, print. Settings come from
the environment (``RUNBUS_REDIS_URL``, ``RUNBUS_NAMESPACE``, ``RUNBUS_OPERATOR``).
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import sys
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, TypeVar

import orjson
import redis.asyncio as aredis
import typer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from services.cli.history import with_history_store
from services.cli.refusals import refusing_bad_input
from services.history.params import check_limit
from services.ops.deadletters import (
    MAX_AUDIT_PAGE,
    check_target,
    dead_letter_stats,
    follow_dead_letters,
    get_dead_letter,
    list_dead_letters,
    match_dead_letters,
    purge,
    read_audit,
    redrive,
    select_dead_letters,
)
from services.ops.durations import parse_duration
from services.ops.filters import SOURCE_KINDS, STAGE_NAMES, redrive_filter, selection_filter
from services.ops.logic import line_of_record
from services.ops.models import DeadLetterFilter, DeadLetterRecord, RedriveResult
from services.ops.partitions import bus_stream
from services.ops.render import (
    audit_text,
    dead_letters,
    families_text,
    json_doc,
    json_line,
    line_text,
    record_view,
    selection_summary,
    stats_view,
    status_view,
)
from services.ops.status import bus_status
from services.ops.stream_ids import parse_dead_letter_id
from shared.archive import ArchiveError, DeadLetterArchive
from shared.connections import async_redis
from shared.names import StreamKind
from shared.settings import Settings

T = TypeVar("T")

ReasonOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--reason",
        "-r",
        help="Error code or code family (invalid_reason_code matches invalid_reason_code:x). "
        "Repeat for any of several.",
    ),
]
StageOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--stage",
        help=f"Rejecting stage ({', '.join(STAGE_NAMES)}). Repeat for any of several.",
    ),
]
SourceOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--source",
        help="Source stream role ("
        + ", ".join(kind.value for kind in SOURCE_KINDS)
        + "): every partition's stream of it. Repeat for any of several.",
    ),
]
BeforeOpt = Annotated[str | None, typer.Option(help="Only dead letters older than this (e.g. 7d).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="JSON output, for piping.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def register(app: typer.Typer) -> None:
    """Add `runbus dlq ...` and `runbus status` to the app."""
    commands: dict[str, Callable[..., None]] = {
        "tail": tail,
        "stats": stats,
        "show": show,
        "redrive": redrive_command,
        "purge": purge_command,
        "audit": audit,
        "prune-archive": prune_archive,
    }
    # The group's help lists its commands from the same table that registers them.
    dlq = typer.Typer(
        name="dlq", help=f"Dead letters: {', '.join(commands)}.", no_args_is_help=True
    )
    for name, command in commands.items():
        dlq.command(name)(command)
    app.add_typer(dlq, name="dlq")
    app.command("status")(status)


# --- plumbing -----------------------------------------------------------------------------


def _run(settings: Settings, work: Callable[[aredis.Redis], Awaitable[T]]) -> T:
    async def main() -> T:
        client = async_redis(settings)
        try:
            return await work(client)
        finally:
            await client.aclose()

    try:
        return asyncio.run(main())
    except (RedisConnectionError, RedisTimeoutError) as exc:
        typer.echo(f"error: Redis is not reachable: {exc}", err=True)
        raise typer.Exit(1) from exc


Work = Callable[[aredis.Redis, DeadLetterArchive | None], Awaitable[T]]


def _run_archived(settings: Settings, work: Work[T]) -> T:
    """`_run` with the dead-letter archive too (None when there is no history database yet);
    exits with 1 when the archive was needed and could not be read."""

    async def with_archive(client: aredis.Redis) -> T:
        from services.history import open_reader  # the history backend loads only when needed

        store = await open_reader(settings)
        try:
            return await work(client, store)
        finally:
            if store is not None:
                await store.close()

    try:
        return _run(settings, with_archive)
    except ArchiveError as exc:
        typer.echo(f"error: the dead-letter archive could not be read: {exc}", err=True)
        raise typer.Exit(1) from exc


def _outage(exc: Exception) -> None:
    typer.echo(f"Redis not reachable ({exc}); retrying...", err=True)


def _duration(value: str | None, option: str) -> timedelta | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from exc


def _operator(settings: Settings) -> str:
    if settings.operator:
        return settings.operator
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def split_ids(values: Iterable[str]) -> list[str]:
    """Entry ids from repeated ``--ids``, each possibly comma/space separated; ``-`` = stdin."""
    ids: list[str] = []
    for value in values:
        text = sys.stdin.read() if value == "-" else value
        ids += [part for part in text.replace(",", " ").split() if part]
    return list(dict.fromkeys(ids))


def _out() -> Console:
    # soft_wrap: one dead letter stays one line however narrow the terminal is; a pipe gets
    # room for whole tables instead of rich's default 80 columns.
    console = Console(highlight=False, soft_wrap=True)
    if not console.is_terminal:
        console = Console(highlight=False, soft_wrap=True, width=max(console.width, 160))
    return console


def _print_json(text: str) -> None:
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        # `runbus dlq tail --json | head`: the reader left; stop quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(0) from None


def _emit(console: Console, record: DeadLetterRecord, as_json: bool) -> None:
    if as_json:
        _print_json(json_line(record))
    else:
        console.print(line_text(line_of_record(record)))


# --- commands -----------------------------------------------------------------------------


def tail(
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new dead letters.")
    ] = False,
    reason: ReasonOpt = None,
    stage: StageOpt = None,
    source: SourceOpt = None,
    since: Annotated[
        str | None, typer.Option(help="Only dead letters younger than this (30s, 15m, 2h, 7d).")
    ] = None,
    before: BeforeOpt = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=0, help="How many to show.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Print the last dead letters, one line each; with --follow, then new ones as they come.

    --follow prints new dead letters matching --reason, --stage and --source (an age filter
    applies to the first page only).
    """
    settings = Settings()
    since_td, before_td = _duration(since, "--since"), _duration(before, "--before")
    with refusing_bad_input():
        flt = selection_filter(reasons=reason or (), stages=stage or (), sources=source or ())
    console = _out()

    async def work(client: aredis.Redis) -> None:
        page = await list_dead_letters(
            client,
            settings.names,
            reasons=flt.reasons,
            stages=flt.stages,
            sources=flt.sources,
            since=since_td,
            before=before_td,
            limit=limit,
        )
        for record in page.items:
            _emit(console, record, as_json)
        if follow:
            async for record in follow_dead_letters(
                client,
                settings.names,
                after_id=page.next_after,
                reasons=flt.reasons,
                stages=flt.stages,
                sources=flt.sources,
                on_outage=_outage,
            ):
                _emit(console, record, as_json)

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends a follow: not an error
        _run(settings, work)


def stats(as_json: JsonOpt = False) -> None:
    """Counts by reason code and by source, oldest and newest age, stream length."""
    settings = Settings()
    result = _run(settings, lambda client: dead_letter_stats(client, settings.names))
    if as_json:
        _print_json(json_doc(result))
    else:
        _out().print(stats_view(result))


def show(
    entry_id: Annotated[
        str,
        typer.Argument(
            help="Dead-letter id, e.g. 1700000000000-0 (with partitions 3:1700000000000-0)."
        ),
    ],
    as_json: JsonOpt = False,
) -> None:
    """One dead letter in full, with its original payload pretty-printed."""
    settings = Settings()
    with refusing_bad_input():
        parse_dead_letter_id(entry_id, "ENTRY_ID")
    record = _run_archived(
        settings, lambda client, archive: get_dead_letter(client, settings.names, entry_id, archive)
    )
    if record is None:
        where = bus_stream(settings.names, StreamKind.DEAD)
        typer.echo(f"no dead letter {entry_id} on {where}", err=True)
        raise typer.Exit(1)
    if as_json:
        _print_json(json_doc(record))
    else:
        _out().print(record_view(record))


def _report_redrive(console: Console, result: RedriveResult) -> None:
    if result.dry_run:
        families = families_text(result.by_family)
        console.print(
            f"dry run: would move {result.matched} to {result.target}"
            + (f" ({families})" if families else "")
            + "; moved nothing"
        )
    else:
        console.print(f"moved {result.moved} to {result.target}; already gone {result.gone}")
    console.print(f"audit record {result.audit_id}")
    if result.other_source:
        console.print(
            f"[yellow]note: {result.other_source} came from another stream than "
            f"{result.target} (see --to)[/]"
        )


def _progress(disable: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=disable,
    )


def redrive_command(
    reason: ReasonOpt = None,
    stage: StageOpt = None,
    source: SourceOpt = None,
    ids: Annotated[
        list[str] | None,
        typer.Option(
            "--ids", help="Exact dead-letter ids (repeat, or comma separated; - = stdin)."
        ),
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Only dead letters younger than this (e.g. 2h).")
    ] = None,
    before: BeforeOpt = None,
    everything: Annotated[
        bool,
        typer.Option("--all", help="Every dead letter (needed when no other filter is given)."),
    ] = False,
    rate: Annotated[
        float, typer.Option(min=0, help="Dead letters moved per second (0: no limit).")
    ] = 500.0,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would move; move nothing.")
    ] = False,
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="Target stream (default: the incoming stream of each dead letter's partition; "
            "only with one partition).",
        ),
    ] = None,
    archived: Annotated[
        bool,
        typer.Option(
            "--archived",
            help="Also the dead letters retention archived (each sent from the archive once).",
        ),
    ] = False,
    yes: YesOpt = False,
) -> None:
    """Move matching dead letters back to the incoming stream (after a taxonomy fix).

    Each goes back to its own partition's incoming stream. Each is moved at most once, however
    often this runs: it is deleted from the dead-letter stream and appended to the target in one
    atomic step. The moved entry carries `redriven_from` and `origin_source_id`. An audit record
    says who moved what. Without a filter it refuses, unless --all says every dead letter is
    meant (as the API does). With --archived the filter also selects the dead letters that
    retention moved to the archive; ids named with --ids are looked for there anyway.
    """
    settings = Settings()
    with refusing_bad_input():
        flt = redrive_filter(
            reasons=reason or (),
            stages=stage or (),
            sources=source or (),
            ids=split_ids(ids or ()),
            since=_duration(since, "--since"),
            before=_duration(before, "--before"),
            everything=everything,
            archived=archived,
        )
    plan = RedrivePlan(settings, flt, to, rate or None, dry_run, yes)
    try:
        _run_archived(settings, plan.run)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


@dataclass(frozen=True)
class RedrivePlan:
    """A `runbus dlq redrive` as typed: what to select, where to, how fast, whether to ask."""

    settings: Settings
    flt: DeadLetterFilter
    target: str | None  #: None: each dead letter's own partition's incoming stream.
    rate: float | None
    dry_run: bool
    yes: bool

    async def run(self, client: aredis.Redis, archive: DeadLetterArchive | None) -> None:
        """Select (ids named: on the stream, else in the archive), list or confirm, move with a
        progress bar, report."""
        names, console = self.settings.names, _out()
        check_target(client, names, self.target)
        where = self.target or bus_stream(names, StreamKind.EVENTS)
        selection = await match_dead_letters(client, names, self.flt, archive=archive)
        ids = selection.ids
        console.print(selection_summary(selection) + f"; target {where}")
        if self.dry_run:
            for line in await select_dead_letters(client, names, self.flt, archive=archive):
                console.print(line_text(line))
        elif ids and not self.yes and not typer.confirm(f"Redrive {len(ids)} to {where}?"):
            raise typer.Abort()
        with _progress(disable=self.dry_run or not ids) as bar:
            task = bar.add_task("redrive", total=len(ids))
            result = await redrive(
                client,
                names,
                self.flt,
                operator=_operator(self.settings),
                target=self.target,
                rate=self.rate,
                dry_run=self.dry_run,
                selected=selection,
                progress=lambda n: bar.advance(task, n),
                archive=archive,
            )
        _report_redrive(console, result)


def prune_archive(
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than", help="Remove archived dead letters older than this (e.g. 90d)."
        ),
    ],
    as_json: JsonOpt = False,
) -> None:
    """Remove archived dead letters older than --older-than, for good.

    Their redrive claims go too; the streams are not touched. Run it as the database's owner:
    the services' role may not delete from the archive."""
    try:
        age = parse_duration(older_than)
    except (ValueError, OverflowError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--older-than") from exc
    result = with_history_store(Settings(), lambda store: store.prune_archive(age))
    if as_json:
        _print_json(orjson.dumps(result.to_dict()).decode())
        return
    typer.echo(f"cutoff {result.cutoff.isoformat()}: {result.letters_deleted} archived removed")


def _run_with_errors(settings: Settings, work: Callable[[aredis.Redis], Awaitable[None]]) -> None:
    try:
        _run(settings, work)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def purge_command(
    before: Annotated[
        str, typer.Option("--before", help="Delete dead letters older than this (e.g. 7d).")
    ],
    reason: ReasonOpt = None,
    stage: StageOpt = None,
    source: SourceOpt = None,
    yes: YesOpt = False,
) -> None:
    """Delete dead letters older than --before (and matching --reason, --stage, --source);
    writes an audit record."""
    settings = Settings()
    before_td = _duration(before, "--before")
    with refusing_bad_input():
        flt = selection_filter(
            reasons=reason or (), stages=stage or (), sources=source or (), before=before_td
        )
    console = _out()

    async def work(client: aredis.Redis) -> None:
        selection = await match_dead_letters(client, settings.names, flt)
        ids = selection.ids
        console.print(selection_summary(selection) + f", older than {before}")
        if ids and not yes and not typer.confirm(f"Delete {dead_letters(len(ids))} for good?"):
            raise typer.Abort()
        result = await purge(
            client,
            settings.names,
            flt,
            operator=_operator(settings),
            selected=ids,
        )
        console.print(f"deleted {result.deleted} of {result.matched}")
        console.print(f"audit record {result.audit_id}")

    _run_with_errors(settings, work)


def audit(
    limit: Annotated[
        int, typer.Option("--limit", "-n", help=f"How many to show (1 to {MAX_AUDIT_PAGE}).")
    ] = 20,
    as_json: JsonOpt = False,
) -> None:
    """The newest redrive and purge records: who did what, when, to how many."""
    with refusing_bad_input():
        check_limit(limit, maximum=MAX_AUDIT_PAGE)
    settings = Settings()
    records = _run(settings, lambda client: read_audit(client, settings.names, limit))
    console = _out()
    for record in records:
        if as_json:
            _print_json(json_line(record))
        else:
            console.print(audit_text(record))


def status(
    as_json: JsonOpt = False,
    window: Annotated[
        float,
        typer.Option(
            min=0,
            help="Seconds between two samples of Redis's memory, for its growth and the time "
            "until maxmemory (0: one sample, no rate).",
        ),
    ] = 1.0,
) -> None:
    """Streams, consumer groups (lag in entries and seconds, pending, oldest pending),
    consumers, dead-letter depth and retention, Redis's memory and when it fills up."""
    settings = Settings()
    result = _run(settings, lambda client: bus_status(client, settings.names, window_s=window))
    if as_json:
        _print_json(json_doc(result))
    else:
        _out().print(status_view(result))
