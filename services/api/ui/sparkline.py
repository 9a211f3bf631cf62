"""Sparklines drawn on the server: a series of numbers as the points of one SVG polyline.

The page draws the chart as inline SVG (``<svg class="spark"><polyline points="…">``): no chart
library, no script, no inline style (the CSP allows none; ``svg.spark`` in ui.css styles it).
A gap in the series (a sample with no rate: the first one, or Redis unreachable) breaks the
line, so the page never draws a figure that was not measured.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

#: The chart's own coordinate system; the SVG scales it to the box ui.css gives it.
WIDTH: Final = 300.0
HEIGHT: Final = 48.0
#: Room kept above and below the line so a peak is not clipped by the stroke.
PAD: Final = 2.0


@dataclass(frozen=True, slots=True)
class Spark:
    """One series ready to draw: its polylines (one per unbroken run) and its figures."""

    lines: tuple[str, ...]
    """Each unbroken run of the series as an SVG ``points`` value."""
    peak: float
    """The highest value (0 for an empty or all-zero series)."""
    last: float | None
    """The newest value (None when the newest sample had none)."""
    width: float = WIDTH
    height: float = HEIGHT

    @property
    def view_box(self) -> str:
        """The SVG ``viewBox`` value."""
        return f"0 0 {self.width:g} {self.height:g}"


def _y(value: float, peak: float) -> float:
    usable = HEIGHT - 2 * PAD
    return HEIGHT - PAD - (value / peak * usable if peak > 0 else 0.0)


def sparkline(values: Sequence[float | None], slots: int | None = None) -> Spark:
    """The sparkline of `values` (oldest first), placed right-aligned on `slots` x positions
    (default: as many as values), so a short history grows from the right edge."""
    count = max(slots or len(values), len(values), 2)
    step = WIDTH / (count - 1)
    offset = count - len(values)
    peak = max((v for v in values if v is not None), default=0.0)
    lines: list[str] = []
    run: list[str] = []
    for index, value in enumerate(values):
        if value is None:
            if run:
                lines.append(" ".join(run))
            run = []
            continue
        run.append(f"{(offset + index) * step:.1f},{_y(value, peak):.1f}")
    if run:
        lines.append(" ".join(run))
    # A single point draws nothing as a polyline: widen it to a short flat stroke.
    lines = [line if " " in line else _widen(line, step) for line in lines]
    return Spark(tuple(lines), peak, values[-1] if values else None)


def _widen(point: str, step: float) -> str:
    x, y = (float(part) for part in point.split(","))
    start = max(0.0, x - step / 2)
    return f"{start:.1f},{y:.1f} {min(WIDTH, start + max(step / 2, 1.0)):.1f},{y:.1f}"
