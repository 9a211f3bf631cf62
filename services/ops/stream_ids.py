"""Stream entry ids as users type them: the one check, for the CLI and the HTTP API alike.

Redis ids are two unsigned 64-bit integers, ``<ms>-<seq>``. The check is one regular
expression (also the OpenAPI pattern, so the document and the code cannot disagree): both parts
in canonical decimal (no sign, no leading zero), each at most 2**64-1. Redis refuses larger
parts, and an exclusive range bound past either end of the id space ("after the last id",
"before 0-0"), so those bounds are turned into "nothing there" here instead of a Redis error.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from services.ops.errors import InvalidStreamId
from shared.names import MAX_PARTITIONS
from shared.wire import entry_id_key

U64_MAX: Final = 2**64 - 1
FIRST_ID: Final = "0-0"
LAST_ID: Final = f"{U64_MAX}-{U64_MAX}"


def _at_most(limit: str) -> str:
    """A regex of the canonical decimals with as many digits as `limit` and not above it."""
    options = []
    for i, digit in enumerate(limit):
        low = 1 if i == 0 else 0
        if int(digit) > low:
            rest = len(limit) - i - 1
            options.append(
                f"{limit[:i]}[{low}-{int(digit) - 1}]" + (f"[0-9]{{{rest}}}" * bool(rest))
            )
    return "|".join([*options, limit])


#: One id part: 0, 1 to 19 digits, or 20 digits up to 18446744073709551615 ([0-9], not \d,
#: which would take other scripts' digits).
_PART: Final = f"(?:0|[1-9][0-9]{{0,{len(str(U64_MAX)) - 2}}}|{_at_most(str(U64_MAX))})"
STREAM_ID_PATTERN: Final = f"^{_PART}-{_PART}$"
_STREAM_ID: Final = re.compile(STREAM_ID_PATTERN)
DESCRIPTION: Final = (
    "A stream entry id, <ms>-<seq>: two unsigned 64-bit integers in decimal "
    f"(each 0 to {U64_MAX}, no leading zeros), e.g. 1700000000000-0."
)
#: The JSON schema of an id (OpenAPI parameters and bodies).
STREAM_ID_SCHEMA: Final[dict[str, Any]] = {
    "type": "string",
    "pattern": STREAM_ID_PATTERN,
    "description": DESCRIPTION,
    "examples": ["1700000000000-0"],
}


def check_stream_id(value: str, field: str = "id") -> str:
    """`value` when it is an entry id Redis can hold; `InvalidStreamId` (naming `field`) if not."""
    if not _STREAM_ID.fullmatch(value):
        shown = value if len(value) <= 60 else value[:57] + "..."
        raise InvalidStreamId(
            f"{field}: not a stream entry id: {shown!r} ({DESCRIPTION})", field=field
        )
    return value


def check_stream_ids(values: Sequence[str], field: str = "ids") -> tuple[str, ...]:
    """Every one of `values` checked (the first bad one raises)."""
    return tuple(check_stream_id(v, field) for v in values)


def after(entry_id: str) -> str | None:
    """The XRANGE start just after `entry_id`; None when no id can follow it."""
    return None if entry_id == LAST_ID else "(" + entry_id


def before(entry_id: str) -> str | None:
    """The XREVRANGE end just before `entry_id`; None when no id can precede it."""
    return None if entry_id == FIRST_ID else "(" + entry_id


# --- dead-letter ids over partitions ----------------------------------------------------------

#: A partition index as a qualified id spells it: 0 to MAX_PARTITIONS - 1, canonical decimal.
_PARTITION: Final = f"(?:0|[1-9][0-9]{{0,{len(str(MAX_PARTITIONS - 1)) - 2}}}|" + (
    f"{_at_most(str(MAX_PARTITIONS - 1))})"
)
DEAD_LETTER_ID_PATTERN: Final = f"^(?:{_PARTITION}:)?{_PART}-{_PART}$"
_DEAD_LETTER_ID: Final = re.compile(DEAD_LETTER_ID_PATTERN)
DEAD_LETTER_ID_DESCRIPTION: Final = (
    "A dead-letter id: <ms>-<seq> (a stream entry id, two unsigned 64-bit integers in decimal, "
    f"each 0 to {U64_MAX}, no leading zeros), optionally qualified by its partition, "
    "<partition>:<ms>-<seq> (e.g. 3:1700000000000-0). With one partition ids are plain; with "
    "several, the API returns qualified ids and a plain one means that entry id in any "
    "partition. As a cursor (after_id, before_id) the id is a position in time order, ties "
    "broken by partition index (a plain cursor excludes the ties of every partition)."
)
#: The JSON schema of a dead-letter id (OpenAPI parameters and bodies).
DEAD_LETTER_ID_SCHEMA: Final[dict[str, Any]] = {
    "type": "string",
    "pattern": DEAD_LETTER_ID_PATTERN,
    "description": DEAD_LETTER_ID_DESCRIPTION,
    "examples": ["1700000000000-0", "3:1700000000000-0"],
}


@dataclass(frozen=True, slots=True)
class DeadLetterId:
    """A dead-letter id as typed: an entry id, and its partition when qualified (None: any)."""

    entry: str
    partition: int | None = None

    @property
    def key(self) -> tuple[int, int, int]:
        """Merged time order over partitions: (ms, seq, partition); any partition sorts first."""
        return (*entry_id_key(self.entry), -1 if self.partition is None else self.partition)

    def partitions(self, count: int) -> range:
        """The partitions (of `count`) this id can name: its own if it exists, else every one."""
        if self.partition is None:
            return range(count)
        return range(self.partition, self.partition + 1) if self.partition < count else range(0)


def parse_dead_letter_id(value: str, field: str = "id") -> DeadLetterId:
    """`value` as a (possibly partition-qualified) dead-letter id; `InvalidStreamId` if not one."""
    if ":" not in value:  # a plain id is judged (and refused) as the entry id it is
        return DeadLetterId(check_stream_id(value, field))
    if not _DEAD_LETTER_ID.fullmatch(value):
        shown = value if len(value) <= 60 else value[:57] + "..."
        raise InvalidStreamId(
            f"{field}: not a dead-letter id: {shown!r} ({DEAD_LETTER_ID_DESCRIPTION})",
            field=field,
        )
    partition, _, entry = value.rpartition(":")
    return DeadLetterId(entry, int(partition) if partition else None)


def parse_dead_letter_ids(values: Sequence[str], field: str = "ids") -> tuple[DeadLetterId, ...]:
    """Every one of `values` parsed (the first bad one raises)."""
    return tuple(parse_dead_letter_id(v, field) for v in values)


def check_dead_letter_ids(values: Sequence[str], field: str = "ids") -> tuple[str, ...]:
    """`values` when each is a dead-letter id (`parse_dead_letter_id`), as given."""
    parse_dead_letter_ids(values, field)
    return tuple(values)


def qualified(partition: int, entry: str, partitions: int) -> str:
    """The id shown for entry `entry` of `partition`: plain with one partition, else qualified."""
    return entry if partitions == 1 else f"{partition}:{entry}"


def after_in(cursor: DeadLetterId, partition: int) -> str | None:
    """The XRANGE start of `partition` just after `cursor` in merged order (None: nothing).

    A partition after the cursor's own may hold an entry with the cursor's very entry id: it
    comes after the cursor, so that bound is inclusive.
    """
    if cursor.partition is not None and partition > cursor.partition:
        return cursor.entry
    return after(cursor.entry)


def before_in(cursor: DeadLetterId, partition: int) -> str | None:
    """The XREVRANGE end of `partition` just before `cursor` in merged order (None: nothing)."""
    if cursor.partition is not None and partition < cursor.partition:
        return cursor.entry
    return before(cursor.entry)


def read_after(cursor: DeadLetterId, partition: int) -> str:
    """The XREAD id of `partition` (entries after it) that follows `cursor` in merged order."""
    if cursor.partition is None or partition <= cursor.partition:
        return cursor.entry
    ms, seq = entry_id_key(cursor.entry)  # the entry just before, so the cursor's own is read
    if seq:
        return f"{ms}-{seq - 1}"
    return f"{ms - 1}-{U64_MAX}" if ms else FIRST_ID
