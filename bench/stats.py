"""Pure arithmetic of the benchmark: percentiles, rates, rounding."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) by the nearest-rank method; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summary_ms(seconds: Sequence[float]) -> dict[str, float | int | None]:
    """p50/p95/p99/max (in ms) and count of durations given in seconds."""
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": rounded(percentile(ms, 50)),
        "p95_ms": rounded(percentile(ms, 95)),
        "p99_ms": rounded(percentile(ms, 99)),
        "max_ms": rounded(max(ms) if ms else None),
    }


def rate(count: float, seconds: float) -> float | None:
    """Events per second, None when no time passed."""
    return count / seconds if seconds > 0 else None


def median(values: Sequence[float]) -> float | None:
    """The median, None for no values."""
    return statistics.median(values) if values else None


def ratio(part: float | None, whole: float | None) -> float | None:
    """part / whole rounded to 3 places, None when either is unknown."""
    if part is None or not whole:
        return None
    return round(part / whole, 3)


def rounded(value: float | None, digits: int = 2) -> float | None:
    """Round for the report (None stays None)."""
    return None if value is None else round(value, digits)
