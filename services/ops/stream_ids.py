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
from typing import Any, Final

from services.ops.errors import InvalidStreamId

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
