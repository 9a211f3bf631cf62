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
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(text: str) -> timedelta:
    """Parse ``30s``, ``15m``, ``2h``, ``7d``, ``1w``, ``500ms`` or a sum like ``1h30m``.

    Raises ValueError on anything else: a bare number is refused (seconds or minutes?), as is a
    negative or empty duration.
    """
    compact = text.strip().lower().replace(" ", "")
    if not compact:
        raise ValueError("empty duration")
    seconds = 0.0
    position = 0
    for match in _PART.finditer(compact):
        if match.start() != position:
            break
        seconds += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if position != len(compact):
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 15m, 2h, 7d, 1h30m)")
    return timedelta(seconds=seconds)


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
