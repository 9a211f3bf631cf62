"""`VersionMap`: the latest version of each coach document, as the change channel tells it.

A dashboard's poll names the version it holds (``If-None-Match``); when this process already
knows that version is the latest, the 304 needs no Redis call at all. The map is fed by the
live hub's one subscription to the coach's change channel (`services.api.live`), and it is only
as good as that subscription, so:

- It is trusted only from a subscribe confirmation on (from then on, every write the coach
  publishes reaches this process) until the subscription fails, reconnects, or its connection
  is seen closed (`connected`); losing trust forgets every entry.
- A change message sets its entry (never a maximum: a document rebuilt from scratch restarts
  at version 1, and the channel says so).
- A read may teach an entry (the version its ``GETRANGE`` or ``GET`` saw), but only when
  nothing changed since the read began (`begin` / `learn`: no change message, no loss of
  trust), so a read overtaken by a write can never put back an older version.
- An entry is believed for `ENTRY_TTL_S` after it was set, then read again: what the channel
  cannot announce (a key deleted by hand, evicted, flushed) is answered by Redis within that
  time.
- At most `MAX_ENTRIES` entries; past that the oldest set is dropped (it is read again).

So a 304 from the map lags the write it misses by the channel's delivery time (milliseconds):
the write's script publishes atomically with its ``SET``.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Final

#: Documents whose version one API process keeps (about 100 bytes each).
MAX_ENTRIES: Final = 65_536
#: How long an entry is believed without being set again (s).
ENTRY_TTL_S: Final = 1.0

Key = tuple[int, str]


class VersionMap:
    """(project, stage) -> latest version, while the change channel is heard."""

    def __init__(
        self,
        max_entries: int = MAX_ENTRIES,
        ttl_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._entries: OrderedDict[Key, tuple[int, float]] = OrderedDict()
        self._max = max_entries
        self._ttl = ENTRY_TTL_S if ttl_s is None else ttl_s
        self._clock = clock
        self._trusted = False
        self._epoch = 0  # bumped by every change message and every change of trust
        self.connected: Callable[[], bool] = lambda: True
        """The subscription's connection is open (set by the hub: redis-py's own view)."""

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def trusted(self) -> bool:
        """True while the subscription is confirmed and its connection open."""
        return self._trusted and self.connected()

    def version(self, project_id: int, stage: str) -> int | None:
        """The latest version of a document, or None when the map cannot say."""
        if not self.trusted:
            return None
        entry = self._entries.get((project_id, stage))
        if entry is None or self._clock() >= entry[1]:
            return None
        return entry[0]

    def begin(self) -> int:
        """A token for `learn`, taken before a read sends its command."""
        return self._epoch

    def learn(self, project_id: int, stage: str, version: int, token: int) -> None:
        """What a read begun at `token` saw, kept only if nothing changed since."""
        if token == self._epoch and self.trusted:
            self._set((project_id, stage), version)

    def changed(self, project_id: int, stage: str, version: int) -> None:
        """A change message: the document's version is now `version`."""
        self._epoch += 1
        if self._trusted:
            self._set((project_id, stage), version)

    def subscribed(self) -> None:
        """A subscribe confirmation: from now on every change is heard (after a reconnect,
        what was published in between was not: the entries are forgotten)."""
        self.lost()
        self._trusted = True

    def lost(self) -> None:
        """The subscription failed or reconnected: forget everything, trust nothing."""
        self._epoch += 1
        self._trusted = False
        self._entries.clear()

    def _set(self, key: Key, version: int) -> None:
        self._entries[key] = (version, self._clock() + self._ttl)
        self._entries.move_to_end(key)
        if len(self._entries) > self._max:
            self._entries.popitem(last=False)
