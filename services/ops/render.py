"""Rendering of ops results for a terminal (rich) and for pipes (JSON lines).

Pure functions from models to text or rich renderables: the CLI prints them, tests read them.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable

import orjson
from pydantic import BaseModel
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from services.ops.durations import format_age
from services.ops.models import (
    AuditRecord,
    BusStatus,
    Count,
    DeadLetterLine,
    DeadLetterRecord,
    DeadLetterStats,
    GroupStatus,
    RedisMemory,
    RetentionStatus,
    Selection,
    StreamStatus,
)
from shared.wire import DEAD_LETTERS, FASTSTREAM_MAGIC, unwrap_body

#: Bytes of a binary payload shown as hex by `show` (the rest is counted, not printed).
HEX_LIMIT = 64 * 1024
#: Reason families named in a selection summary; the rest are counted ("and 3 more families").
FAMILY_LIMIT = 10
#: Original fields are shown under their names on the dead-letter stream.
_ORIGINAL_PREFIX = DEAD_LETTERS.ORIGINAL_PREFIX.decode()


def json_line(model: BaseModel) -> str:
    """One model as a single JSON line."""
    return orjson.dumps(model.model_dump(mode="json")).decode()


def json_doc(model: BaseModel) -> str:
    """One model as indented JSON."""
    return orjson.dumps(model.model_dump(mode="json"), option=orjson.OPT_INDENT_2).decode()


def project_run(line: DeadLetterLine) -> str:
    """``p7/exp-42``-style location of the event, ``-`` when unknown."""
    project = f"p{line.project_id}" if line.project_id else ""
    if project and line.run_id:
        return f"{project}/{line.run_id}"
    return project or line.run_id or "-"


def line_text(line: DeadLetterLine) -> Text:
    """One dead letter on one line: time, id, reason codes, stage/type, project/run, summary."""
    out = Text()
    out.append(line.dead_at.strftime("%Y-%m-%d %H:%M:%S"), style="dim")
    out.append(f" {line.id} ", style="dim")
    out.append(",".join(line.errors), style="bold red")
    out.append(f" {line.stage or '?'}/{line.event_kind or '?'}", style="cyan")
    out.append(f" {project_run(line)}", style="magenta")
    summary = " ".join(line.summary.split())
    out.append(f" {summary[:160]}")
    return out


def families_text(families: list[Count], limit: int = FAMILY_LIMIT) -> str:
    """``malformed_json 3, invalid_reason_code 1``: every family, or the first `limit` and how
    many more (never a silent cut)."""
    shown = ", ".join(f"{c.key} {c.count}" for c in families[:limit])
    left = len(families) - limit
    if left > 0:
        shown += f", and {left} more famil{'y' if left == 1 else 'ies'} (see runbus dlq stats)"
    return shown


def dead_letters(count: int) -> str:
    """``1 dead letter``, ``2 dead letters``: a count with its noun."""
    return f"{count} dead letter" + ("" if count == 1 else "s")


def selection_summary(selection: Selection, limit: int = FAMILY_LIMIT) -> str:
    """What a redrive or purge will act on: how many, and their reason families."""
    count = len(selection.ids)
    head = dead_letters(count) + (" matches" if count == 1 else " match")
    families = families_text(selection.by_family, limit)
    return head + (f" ({families})" if families else "")


def audit_text(record: AuditRecord) -> Text:
    """One audit record on one line."""
    out = Text()
    out.append(record.at.strftime("%Y-%m-%d %H:%M:%S"), style="dim")
    out.append(f" {record.id or '-'} ", style="dim")
    out.append(record.action + (" (dry run)" if record.dry_run else ""), style="bold")
    out.append(f" by {record.operator}: {record.count} of {record.matched}")
    if record.target:
        out.append(f" to {record.target}")
    out.append(f" filter {orjson.dumps(record.filter).decode()}", style="cyan")
    return out


def hexdump(data: bytes, limit: int = HEX_LIMIT) -> str:
    """Classic hex dump (offset, 16 bytes, printable ASCII), cut at `limit` bytes."""
    rows = []
    for offset in range(0, min(len(data), limit), 16):
        chunk = data[offset : offset + 16]
        ascii_ = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        rows.append(f"{offset:08x}  {chunk.hex(' '):<47}  {ascii_}")
    if len(data) > limit:
        rows.append(f"... {len(data) - limit} more bytes not shown (use --json for all)")
    return "\n".join(rows)


def pretty_original(data: bytes) -> tuple[str, str]:
    """The kind of a payload and a readable rendering of it.

    Kinds: ``empty``, ``json`` (indented; FastStream's binary format unwrapped first),
    ``text`` (not JSON, shown as a Python literal so control characters stay visible) and
    ``binary`` (hex dump).
    """
    if not data:
        return "empty", ""
    body = unwrap_body(data)
    kind = "json (faststream binary)" if data.startswith(FASTSTREAM_MAGIC) else "json"
    if body is not None:
        try:
            return kind, orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2).decode()
        except orjson.JSONDecodeError:
            pass
    try:
        return "text", repr(data.decode("utf-8"))
    except UnicodeDecodeError:
        return "binary", hexdump(data)


def record_view(record: DeadLetterRecord) -> RenderableType:
    """One dead letter in full: every field, then the original payload pretty-printed."""
    rows: list[tuple[str, str]] = [
        ("id", record.id),
        ("errors", "\n".join(record.errors)),
        ("message", record.message),
        ("stage", f"{record.stage} (group {record.group}, consumer {record.consumer})"),
        ("source", f"{record.source_stream} {record.source_id}"),
        ("delivery_count", str(record.delivery_count)),
        ("first_seen", record.first_seen.isoformat()),
        ("dead_at", record.dead_at.isoformat()),
        ("taxonomy_version", record.taxonomy_version),
        ("service_version", record.service_version),
        ("hint", orjson.dumps(record.hint).decode()),
    ]
    for name, value in record.original_fields.items():
        if name in record.original_fields_base64:
            value = repr(base64.b64decode(value))  # not UTF-8: show the bytes, escaped
        rows.append((_ORIGINAL_PREFIX + name, value))
    if not record.readable:
        rows.append(("readable", "no: not a well-formed dead letter"))
    if record.archived_at is not None:
        redriven = "; redriven from the archive" if record.archive_redriven else ""
        rows.append(("archived_at", f"{record.archived_at.isoformat()} (off the stream{redriven})"))
    # Plain aligned lines rather than a table: no padding, and long values wrap freely.
    table = Text()
    for name, value in rows:
        indented = value.replace("\n", "\n" + " " * 18)
        table.append(f"{name:<17} ", style="bold")
        table.append(indented + "\n")
    kind, pretty = pretty_original(record.original_bytes())
    title = Text(f"original ({record.original_size} bytes, {kind})", style="bold")
    return Group(table, title, Text(pretty))


def _count_table(title: str, counts: Iterable[Count]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column(title.split(" by ", 1)[-1])
    table.add_column("count", justify="right")
    for row in counts:
        table.add_row(Text(row.key), str(row.count))
    return table


def stats_view(stats: DeadLetterStats) -> RenderableType:
    """Dead-letter counts as tables, with the stream's length and ages."""
    head = Text.assemble(
        (f"{stats.stream}", "bold"),
        f": {stats.length} dead letters, oldest {format_age(stats.oldest_age_s)} ago,",
        f" newest {format_age(stats.newest_age_s)} ago",
        (f" (scanned {stats.scanned} in {stats.elapsed_s:.2f}s)", "dim"),
    )
    parts: list[RenderableType] = [head]
    if len(stats.partitions) > 1:
        parts.append(_partitions_table(stats))
    return Group(
        *parts,
        _count_table("dead letters by reason family", stats.by_family),
        _count_table("dead letters by reason code", stats.by_code),
        _count_table("dead letters by stage", stats.by_stage),
        _count_table("dead letters by source stream", stats.by_source_stream),
    )


def _where(status: BusStatus, stream: StreamStatus) -> str:
    """A stream's role, after its partition's index when there are several (``3/events``)."""
    return stream.role if status.partitions == 1 else f"{stream.partition}/{stream.role}"


def _placed(status: BusStatus) -> list[tuple[str, StreamStatus]]:
    """Every stream with the name its rows start with: the partitions', then the outlets'
    (one for the whole bus: no partition index)."""
    return [(_where(status, s), s) for s in status.streams] + [(o.role, o) for o in status.outlets]


def _partitions_table(stats: DeadLetterStats) -> Table:
    table = _table("dead letters by partition", "partition", "stream", "length", "families")
    for share in stats.partitions:
        families = families_text(share.by_family, limit=3)
        table.add_row(str(share.partition), Text(share.stream), str(share.length), Text(families))
    return table


def _group_cells(where: str, group: GroupStatus) -> list[str]:
    name = f"{where}/{group.name}" + ("" if group.expected else " (extra)")
    if not group.exists:
        return [name, "absent", "", "", "", "", "", ""]
    return [
        name,
        "-" if group.lag is None else str(group.lag),
        format_age(group.lag_s),
        str(group.pending),
        format_age(group.oldest_pending_age_s),
        group.last_delivered_id or "-",
        "-" if group.entries_read is None else str(group.entries_read),
        str(len(group.consumers)),
    ]


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(
            column,
            justify="left" if column in _LEFT else "right",
            min_width=AGE_WIDTH if column in _AGES else None,
        )
    return table


_LEFT = frozenset({"stream", "key", "group", "consumer", "last delivered"})
#: Columns of ages (`format_age`): as wide as the widest age under 100 days (``23h59m``), so a
#: table keeps its width while the ages change (``watch runbus status``).
_AGES = frozenset({"first", "last", "idle"})
AGE_WIDTH = 6


def _streams_table(status: BusStatus) -> Table:
    table = _table(
        f"streams of namespace {status.namespace}", "stream", "key", "length", "first", "last"
    )
    for where, stream in _placed(status):
        cells = [str(stream.length), format_age(stream.first_age_s), format_age(stream.last_age_s)]
        if not stream.exists:
            cells = [stream.error or "absent", "", ""]
        table.add_row(where, Text(stream.name), *cells)
    return table


def _groups_tables(status: BusStatus) -> tuple[Table, Table]:
    columns = (
        "lag", "lag age", "pending", "oldest pending", "last delivered", "entries read",
        "consumers",
    )  # fmt: skip
    groups = _table("consumer groups", "group", *columns)
    consumers = _table("consumers", "consumer", "pending", "idle")
    for where, stream in _placed(status):
        for group in stream.groups:
            groups.add_row(*_group_cells(where, group))
            for consumer in group.consumers:
                consumers.add_row(
                    Text(f"{where}/{group.name}/{consumer.name}"),
                    str(consumer.pending),
                    format_age(consumer.idle_ms / 1000),
                )
    return groups, consumers


def _totals_table(status: BusStatus) -> Table:
    table = _table(
        f"totals over {status.partitions} partitions", "stream", "group", "length", "lag",
        "pending", "consumers", "absent in",
    )  # fmt: skip
    for total in status.totals:
        table.add_row(total.role, "", str(total.length), "", "", "", str(total.missing or ""))
        for group in total.groups:
            lag = "-" if group.lag is None else str(group.lag)
            cells = [lag, str(group.pending), str(group.consumers), str(group.missing or "")]
            table.add_row(total.role, group.name, "", *cells)
    return table


def status_view(status: BusStatus) -> RenderableType:
    """The bus at a glance: streams, groups, consumers, and the dead-letter depth."""
    groups, consumers = _groups_tables(status)
    parts: list[RenderableType] = [_streams_table(status), groups]
    if consumers.row_count:
        parts.append(consumers)
    if status.partitions > 1:
        parts.append(_totals_table(status))
    style = "bold red" if status.dead_letters else "green"
    parts.append(Text.assemble(("dead letters: ", "bold"), (str(status.dead_letters), style)))
    parts.append(retention_text(status.retention))
    if status.memory is not None:
        parts.append(memory_text(status.memory))
    return Group(*parts)


def memory_text(memory: RedisMemory) -> Text:
    """One line: Redis's memory against its limit, and whether it refuses writes."""
    limit = _size(memory.max_bytes) if memory.max_bytes else "no limit"
    line = Text.assemble(
        ("redis memory: ", "bold"), f"{_size(memory.used_bytes)} of {limit} ({memory.policy})"
    )
    if memory.growth_bytes_per_s is not None:
        sign = "+" if memory.growth_bytes_per_s >= 0 else "-"
        line.append(f", {sign}{_size(int(abs(memory.growth_bytes_per_s)))}/s")
    if memory.full:
        line.append("; FULL: XADD refused (OOM), producers spool", style="bold red")
    elif memory.full_in_s is not None:
        line.append(f"; full in {format_age(memory.full_in_s)} at this rate", style="yellow")
    return line


def _size(count: int | None) -> str:
    """Bytes in the largest binary unit that keeps the number at least 1 (one decimal)."""
    if count is None:
        return "?"
    value, unit = float(count), "B"
    for bigger in ("KiB", "MiB", "GiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"


def retention_text(retention: RetentionStatus) -> Text:
    """One line: what retention archived and expired, the archive's size, the last sweep."""
    if retention.last_sweep_age_s is None:
        return Text.assemble(("dead-letter retention: ", "bold"), "no sweep reported yet")
    archive = f"archive {retention.archive_entries} ({_size(retention.archive_bytes)})"
    if retention.archive_oldest_age_s is not None:
        archive += f", oldest {format_age(retention.archive_oldest_age_s)} ago"
    line = Text.assemble(
        ("dead-letter retention: ", "bold"),
        f"archived {retention.archived}, expired {retention.expired}; {archive}; "
        f"last sweep {format_age(retention.last_sweep_age_s)} ago",
    )
    if retention.error:
        line.append(f"; failing: {retention.error}", style="bold red")
    return line
