"""The overview's `Reading` from the live hub's samples: no Redis read of its own.

The hub (`services.api.live.LiveHub`) samples the bus once per API process every
``RUNBUS_UI_SAMPLE_S``, whatever the number of open pages, and keeps the last 10 minutes: the
newest sample carries the full status, every sample its stages' rates and health.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from services.api.live import RING_S
from services.api.samples import StatusSample
from services.api.ui.overview_model import Reading
from shared.pipeline import PIPELINE

FAMILIES_NOTE = (
    "Every dead letter the stages ever wrote, by reason family (their counters: a redrive or "
    "purge does not lower them)."
)


def _rate(sample: StatusSample, stage: str) -> float | None:
    return next((s.rate for s in sample.stages if s.stage == stage), None)


def reading_of(samples: Sequence[StatusSample], sample_s: float, api_ready: bool) -> Reading:
    """The reading the newest of `samples` (oldest first, at least one) describes."""
    latest = samples[-1]
    status = latest.status if latest.up else None
    return Reading(
        latest.at,
        status,
        rates={name: [_rate(s, name) for s in samples] for name in PIPELINE.stage_names},
        handled={s.stage: s.entries for s in latest.stages},
        health={s.stage: s.health for s in latest.stages},
        dead_by_family=latest.dead_by_family,
        families_note=FAMILIES_NOTE,
        api_ready=api_ready,
        error=latest.error,
        window_s=RING_S,
        slots=max(2, math.ceil(RING_S / sample_s)),
    )
