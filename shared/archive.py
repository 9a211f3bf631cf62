"""The dead-letter archive's contract: what a dead letter becomes when retention archives it.

A dead letter past the retention policy (`Settings.dead_letter_max_age_s`,
`Settings.dead_letter_max_entries`) is written to the history database's archive before it is
trimmed off its stream (`services.persister.retention`). The archive keeps the entry whole:
every field as the stream held it (the original bytes, every error code, the source stream and
id, the times), so everything that reads a dead letter from the stream reads an archived one
the same way (`services.ops`). Its key is the dead-letter stream and the entry id there: the
archive is idempotent on it, so archiving an entry twice (a crash between archive and trim)
stores it once.

The ops tools (one layer) read the archive and the history stores (another) implement it:
the protocol lives here, below both.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol, runtime_checkable

import orjson

from shared.wire import DEAD_LETTERS, Fields, entry_time

_LENGTH: Final = struct.Struct(">I")


class ArchiveError(Exception):
    """The archive could not be read or written (the history stores' `HistoryError` is one)."""


def pack_fields(fields: Fields) -> bytes:
    """Fields as one blob: every name and value preceded by its length (4 bytes big-endian)."""
    parts: list[bytes] = []
    for name, value in fields.items():
        parts += (_LENGTH.pack(len(name)), name, _LENGTH.pack(len(value)), value)
    return b"".join(parts)


def unpack_fields(blob: bytes) -> Fields:
    """The fields `pack_fields` packed, in their order (ValueError when the blob is cut)."""
    out: Fields = {}
    view, at = memoryview(blob), 0
    items: list[bytes] = []
    while at < len(blob):
        if at + 4 > len(blob):
            raise ValueError("archived fields: truncated length")
        (size,) = _LENGTH.unpack_from(view, at)
        at += 4
        if at + size > len(blob):
            raise ValueError("archived fields: truncated value")
        items.append(bytes(view[at : at + size]))
        at += size
    if len(items) % 2:
        raise ValueError("archived fields: a name without a value")
    for index in range(0, len(items), 2):
        out[items[index]] = items[index + 1]
    return out


@dataclass(frozen=True, slots=True)
class ArchivedLetter:
    """One dead letter in the archive: where it was, its id there, and its whole entry."""

    stream: str  #: The dead-letter stream it was on (with `entry_id`: the archive's key).
    entry_id: str  #: Its id there (``<ms>-<seq>``).
    fields: Fields  #: Every field of the entry, unchanged.
    archived_at: datetime | None = None  #: When the archive got it (None before it did).
    redriven: bool = False  #: True once a redrive sent it back from the archive.


@dataclass(frozen=True, slots=True)
class ArchiveRow:
    """The columns of one archived dead letter, derived from its entry (what the stores write).

    The original bytes get a column of their own, the other fields one packed blob; the codes,
    source and times are columns so an operator can query the archive with plain SQL.
    """

    stream: str
    entry_id: str
    ms: int  #: The entry id's time part (ms since the epoch): when it was dead-lettered.
    seq: int  #: The entry id's sequence part.
    errors: str  #: Every error code, as a JSON list.
    stage: str
    source_stream: str
    source_id: str
    first_seen: str  #: As the entry holds it (ISO 8601), '' when absent.
    dead_at: datetime  #: From the entry id: exact for every entry, readable or not.
    original: bytes
    other: bytes  #: Every other field, `pack_fields`-packed.
    size: int  #: Bytes of every name and value: what the archive holds for it.


def archive_row(stream: str, entry_id: str, fields: Fields) -> ArchiveRow:
    """The row of one dead-letter entry (never raises: a foreign entry is archived as is)."""
    original_key = DEAD_LETTERS.key("original")
    ms, _, seq = entry_id.partition("-")
    raw_errors = DEAD_LETTERS.raw(fields, "errors")
    try:
        codes = orjson.loads(raw_errors) if raw_errors else []
    except orjson.JSONDecodeError:
        codes = []
    errors = [_clean(c) for c in codes if isinstance(c, str)] if isinstance(codes, list) else []
    return ArchiveRow(
        stream=stream,
        entry_id=entry_id,
        ms=int(ms),
        seq=int(seq),
        errors=orjson.dumps(errors).decode(),
        stage=_text(DEAD_LETTERS.raw(fields, "stage")),
        source_stream=_text(DEAD_LETTERS.raw(fields, "source_stream")),
        source_id=_text(DEAD_LETTERS.raw(fields, "source_id")),
        first_seen=_text(DEAD_LETTERS.raw(fields, "first_seen")),
        dead_at=entry_time(entry_id),
        original=fields.get(original_key, b""),
        other=pack_fields({k: v for k, v in fields.items() if k != original_key}),
        size=sum(len(k) + len(v) for k, v in fields.items()),
    )


def fields_of(original: bytes, other: bytes) -> Fields:
    """An archived entry's fields again (the inverse of `archive_row`'s two byte columns)."""
    fields = unpack_fields(other)
    fields[DEAD_LETTERS.key("original")] = original
    return fields


def _text(raw: bytes) -> str:
    return _clean(raw.decode("utf-8", "replace"))


def _clean(text: str) -> str:
    # The query columns only: PostgreSQL text and jsonb refuse NUL, and a refused row would stop
    # retention for good. The exact bytes stay in the packed fields.
    return text.replace("\x00", "\ufffd")


@dataclass(frozen=True, slots=True)
class ArchiveSize:
    """How much the archive holds."""

    entries: int  #: Dead letters archived (and not pruned).
    bytes: int  #: Their fields' bytes.
    oldest_ms: int | None  #: The oldest one's dead-letter time (ms since the epoch).
    redriven: int  #: Of them, sent back by a redrive from the archive.


#: A stream entry id as (ms, seq): the archive's order (its `ms`, `seq` columns).
IdKey = tuple[int, int]
#: Below and above every id the archive can hold (both columns are 64-bit signed integers).
FIRST_ID: Final[IdKey] = (-1, -1)
LAST_ID: Final[IdKey] = (2**63 - 1, 2**63 - 1)


@runtime_checkable
class DeadLetterArchive(Protocol):
    """Where retention puts dead letters before trimming them (both history stores are one).

    Every method may raise an `ArchiveError` (the stores' `StoreUnavailable`).
    """

    async def archive_dead_letters(self, rows: Sequence[ArchiveRow]) -> int:
        """Store the rows in one transaction, skipping those already archived; how many
        were new."""

    async def archived_dead_letters(self, keys: Sequence[tuple[str, str]]) -> list[ArchivedLetter]:
        """The archived letters with these ``(stream, entry_id)`` keys, in the order given."""

    async def archived_after(
        self, stream: str, after: IdKey, until: IdKey, limit: int
    ) -> list[ArchivedLetter]:
        """Up to `limit` archived letters of `stream` whose id (ms, seq) is above `after` and
        at most `until`, oldest first: a scan of the archive a page at a time."""

    async def claim_redrives(self, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """Record that these archived letters are being redriven; the keys claimed now (a
        letter already claimed by an earlier redrive is left out: it is redriven once)."""

    async def release_redrives(self, keys: Sequence[tuple[str, str]]) -> None:
        """Undo claims whose redrive failed (the entry never reached its target), so a later
        redrive may send those letters."""

    async def archive_size(self) -> ArchiveSize:
        """How much the archive holds."""
