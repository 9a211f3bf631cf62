"""Waiting out an outage: one backoff policy and one log of the outage's start and end.

Every retry in runbus (a stage's Redis reads, a handler that failed, the persister's database
writes, the best-effort producer's sends, the supervisor's child restarts, ``dlq tail -f``)
waits `Backoff.delay` between attempts: "full jitter" as in AWS's *Exponential Backoff and
Jitter*, a uniform draw between 0 and ``min(cap, base * 2**attempt)``. Without the jitter every
replica that lost Redis at the same moment would retry at the same moments too, and reconnect
in lockstep when it comes back; with it their retries spread over the whole window, and the
longest wait is still the cap.

`OutageLog` logs an outage once when it starts and once when it ends, however many attempts
fail in between, so a long outage is two log lines, not one per retry.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final, Protocol

from structlog.typing import FilteringBoundLogger

#: Above this exponent every realistic base times 2**attempt is past its cap already; clamping
#: keeps the float product finite however many attempts failed.
_MAX_EXPONENT: Final = 64


class RandomSource(Protocol):
    """Where jitter comes from: `random.Random` or, in tests, anything with ``random()``."""

    def random(self) -> float:
        """A float in [0, 1)."""
        ...


#: The default source: seeded from the OS, so two processes draw different delays.
SYSTEM_RANDOM: Final[RandomSource] = random.Random()


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with full jitter: retry `attempt` (0-based) waits up to the ceiling."""

    base_s: float
    """The ceiling of the first retry's delay (attempt 0)."""
    cap_s: float
    """The longest any retry waits."""

    def ceiling(self, attempt: int) -> float:
        """The longest delay before retry `attempt`: ``min(cap, base * 2**attempt)``."""
        return float(min(self.cap_s, self.base_s * 2 ** min(max(attempt, 0), _MAX_EXPONENT)))

    def delay(self, attempt: int, rng: RandomSource = SYSTEM_RANDOM) -> float:
        """The delay before retry `attempt`: uniform in ``[0, ceiling(attempt))``."""
        return rng.random() * self.ceiling(attempt)


class OutageLog:
    """Logs `down_event` when an outage starts and `up_event` when it ends, once each."""

    def __init__(
        self, log: FilteringBoundLogger, down_event: str, up_event: str, **fields: object
    ) -> None:
        self._log = log
        self._down_event = down_event
        self._up_event = up_event
        self._fields = fields
        self.is_down = False

    def down(self, exc: BaseException) -> None:
        """An attempt failed: a warning if this starts an outage, nothing if one is under way."""
        if not self.is_down:
            self._log.warning(self._down_event, **self._fields, error=str(exc))
        self.is_down = True

    def up(self) -> None:
        """An attempt worked: an info line if it ends an outage, nothing otherwise."""
        if self.is_down:
            self._log.info(self._up_event, **self._fields)
        self.is_down = False
