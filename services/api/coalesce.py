"""`Coalescer`: concurrent reads of one key share one Redis command, and none is answered with
data older than a command of its own would have read.

Every open dashboard polls the same few coach documents. Fifty polls in flight for one
document sent fifty ``GET``s of one key: fifty round trips through redis-py for one answer, the
API's largest cost per 200. Here a read of a key with no command in flight sends its own; a
read that arrives while one is in flight waits for the *next* command, sent as soon as the
current one returns, and every read that arrived meanwhile shares that one. It never joins the
command in flight: that one was sent before the read arrived and could miss a write the reader
already saw acknowledged. So each answer comes from a command sent after its request arrived —
what an uncoalesced read gives — with at most one command per key in flight, and a lone reader
pays nothing (no task, no future).

An error reaches every read that shared the command (the route then answers it as its own).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

Fetch = Callable[[], Awaitable[V]]


class Coalescer(Generic[K, V]):
    """Reads by key, at most one command per key in flight."""

    def __init__(self) -> None:
        self._busy: set[K] = set()
        """Keys with a command in flight."""
        self._next: dict[K, asyncio.Future[V]] = {}
        """Per busy key, the answer the reads that came since its command was sent wait for."""
        self._tasks: set[asyncio.Task[None]] = set()  # strong references until each ends

    def __len__(self) -> int:
        return len(self._busy)

    async def read(self, key: K, fetch: Fetch[V]) -> V:
        """`fetch()`'s answer from a command sent after this call (shared while one is busy)."""
        if key not in self._busy:
            self._busy.add(key)
            try:
                return await fetch()
            finally:
                self._sent_next(key, fetch)
        waiting = self._next.get(key)
        if waiting is None:
            waiting = self._next[key] = asyncio.get_running_loop().create_future()
        # shield: a reader that goes away (its client hung up) leaves the others their answer
        return await asyncio.shield(waiting)

    def _sent_next(self, key: K, fetch: Fetch[V]) -> None:
        """The key's command returned: send the next for those who wait, or free the key."""
        waiting = self._next.pop(key, None)
        if waiting is None:
            self._busy.discard(key)
            return
        task = asyncio.get_running_loop().create_task(self._answer(key, fetch, waiting))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, key: K, fetch: Fetch[V], waiting: asyncio.Future[V]) -> None:
        try:
            waiting.set_result(await fetch())
        except asyncio.CancelledError:
            waiting.cancel()
            raise
        except Exception as exc:
            waiting.set_exception(exc)
            waiting.exception()  # read here too: no "never retrieved" when every reader left
        finally:
            self._sent_next(key, fetch)
