"""Human durations: ``30s``, ``15m``, ``2h``, ``7d``, ``1h30m``; and compact ages for display.

One parser for every command and API parameter that takes a duration (``--since``,
``--before``, ...), so they all accept the same spellings.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Final

_UNITS: Final[dict[str, float]] = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}
_UNIT = "|".join(sorted(_UNITS, key=len, reverse=True))
_PART = re.compile(rf"([0-9]+(?:\.[0-9]+)?) *({_UNIT})")
#: The whole grammar, as the OpenAPI document shows it: number-unit parts, spaces between
#: allowed, units in either case. ([0-9], not \d, which would take other scripts' digits.)
DURATION_PATTERN: Final = "^ *(?:[0-9]+(?:\\.[0-9]+)? *(?:[mM][sS]|[sS]|[mM]|[hH]|[dD]|[wW]) *)+$"
_DURATION: Final = re.compile(DURATION_PATTERN)
#: Longer durations mean the same as this one: every dead letter there can be (and
#: ``now - duration`` stays a valid time).
MAX_DURATION: Final = timedelta(days=365 * 1000)
#: The JSON schema of a duration parameter.
DURATION_SCHEMA: Final[dict[str, object]] = {
    "type": "string",
    "pattern": DURATION_PATTERN,
    "examples": ["30s", "15m", "2h", "7d", "1h30m"],
}


def parse_duration(text: str) -> timedelta:
    """Parse ``30s``, ``15m``, ``2h``, ``7d``, ``1w``, ``500ms`` or a sum like ``1h30m``.

    Raises ValueError on anything else: a bare number is refused (seconds or minutes?), as is a
    negative or empty duration. ``0s`` is a duration (zero); anything above `MAX_DURATION`
    counts as `MAX_DURATION`.
    """
    if not text.strip():
        raise ValueError("empty duration")
    if not _DURATION.fullmatch(text):
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 15m, 2h, 7d, 1h30m)")
    seconds = sum(
        float(m.group(1)) * _UNITS[m.group(2).lower()] for m in _PART.finditer(text.lower())
    )
    return timedelta(seconds=min(seconds, MAX_DURATION.total_seconds()))


def format_age(seconds: float | None) -> str:
    """A compact age: ``850ms``, ``42s``, ``3m12s``, ``5h04m``, ``2d03h``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    if seconds < 0:
        seconds = 0.0
    if seconds < 1:
        return f"{int(seconds * 1000)}ms"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"
