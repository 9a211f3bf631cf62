"""When a worker counts as healthy: the one rule, for the container healthcheck and the dashboard.

A worker is unhealthy when work waits and it does not take it: an entry of its stream has
waited longer than `MAX_IDLE_S` without being delivered to its group, and its consumer has not
read for that long either. (On Redis 7.0 a consumer blocked in XREADGROUP on an empty stream
looks idle, so idle time alone cannot tell a quiet worker from a dead one.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

#: How long work may wait, and a consumer sit idle, before a worker is unhealthy (s).
MAX_IDLE_S: Final = 30.0


@dataclass(frozen=True)
class WorkerView:
    """What Redis says about one worker's group and consumer."""

    group_exists: bool
    idle_s: float | None = None  # its consumer; None before its first delivery
    waiting_s: float | None = None  # age of the oldest entry not yet delivered; None if none

    def healthy(self, max_idle_s: float = MAX_IDLE_S) -> bool:
        """True unless work waits longer than `max_idle_s` while this consumer sits idle."""
        if not self.group_exists:
            return False
        if self.waiting_s is None or self.waiting_s <= max_idle_s:
            return True
        return self.idle_s is not None and self.idle_s <= max_idle_s
