"""In-memory fan-out of one source to many subscribers: `Topic` and `Subscription`.

One loop per topic reads Redis and `Topic.publish`es; every open page holds a `Subscription`
with a bounded queue of its own. Publishing never awaits: a slow client cannot hold up the loop
or the other clients. When a queue is full its oldest item is dropped and the subscription is
marked lagged; its reader then gets a `Resync` marker (before the items that survived), so a
page knows to fetch its part again. Closing a subscription (a client went away) removes it from
its topic, and the topic tells its owner when its last subscriber left.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Generic, Literal, TypeVar

T = TypeVar("T")

#: Items a subscription holds before it drops its oldest (and is marked lagged).
QUEUE_SIZE = 256


@dataclass(frozen=True, slots=True)
class Resync:
    """Something may have been missed: fetch again, then apply what follows."""

    reason: Literal["lagged", "reconnected"]
    """lagged: this subscriber's queue overflowed; reconnected: the hub lost Redis for a while."""


class Subscription(Generic[T]):
    """One subscriber's view of a topic: an async iterator of items and `Resync` markers.

    Ends when closed (by its owner, or by the hub at shutdown). Use it as an async context
    manager, or call `close`, so its topic forgets it.
    """

    def __init__(
        self,
        on_close: Callable[[Subscription[T]], None],
        accept: Callable[[T], bool] | None = None,
        maxsize: int = QUEUE_SIZE,
    ) -> None:
        self._items: deque[T | Resync] = deque()
        self._maxsize = maxsize
        self._accept = accept
        self._on_close = on_close
        self._wake = asyncio.Event()
        self._lagged = False
        self.closed = False
        self.dropped = 0
        """Items dropped because the reader was too slow (the page resyncs)."""

    def offer(self, item: T | Resync) -> None:
        """Queue `item` if this subscriber wants it; never blocks (drops the oldest if full)."""
        if self.closed:
            return
        if not isinstance(item, Resync) and self._accept is not None and not self._accept(item):
            return
        if len(self._items) >= self._maxsize:
            self._items.popleft()
            self.dropped += 1
            self._lagged = True
        self._items.append(item)
        self._wake.set()

    @property
    def queued(self) -> int:
        """Items waiting for the reader."""
        return len(self._items)

    @property
    def lagged(self) -> bool:
        """True from an overflow until the reader got its `Resync`."""
        return self._lagged

    def close(self) -> None:
        """End the iteration and leave the topic (idempotent)."""
        if self.closed:
            return
        self.closed = True
        self._items.clear()
        self._wake.set()
        self._on_close(self)

    def __aiter__(self) -> Subscription[T]:
        return self

    async def __anext__(self) -> T | Resync:
        while True:
            if self.closed:
                raise StopAsyncIteration
            if self._lagged:
                self._lagged = False
                return Resync("lagged")
            if self._items:
                return self._items.popleft()
            self._wake.clear()
            await self._wake.wait()

    async def __aenter__(self) -> Subscription[T]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Topic(Generic[T]):
    """The subscribers of one source. `on_first` / `on_last` start and stop the source's loop."""

    def __init__(
        self,
        name: str,
        on_first: Callable[[], None] | None = None,
        on_last: Callable[[], None] | None = None,
        maxsize: int = QUEUE_SIZE,
    ) -> None:
        self.name = name
        self._subscribers: set[Subscription[T]] = set()
        self._on_first = on_first
        self._on_last = on_last
        self._maxsize = maxsize
        self._closed = False

    def __len__(self) -> int:
        return len(self._subscribers)

    def subscribe(self, accept: Callable[[T], bool] | None = None) -> Subscription[T]:
        """A new subscription (already closed once the topic is closed: it yields nothing)."""
        sub: Subscription[T] = Subscription(self._forget, accept, self._maxsize)
        if self._closed:
            sub.close()
            return sub
        self._subscribers.add(sub)
        if len(self._subscribers) == 1 and self._on_first is not None:
            self._on_first()
        return sub

    def publish(self, item: T | Resync) -> None:
        """Hand `item` to every subscriber (each filters for itself); never blocks."""
        for sub in tuple(self._subscribers):
            sub.offer(item)

    def close(self) -> None:
        """End every subscription and refuse new ones."""
        self._closed = True
        for sub in tuple(self._subscribers):
            sub.close()

    def _forget(self, sub: Subscription[T]) -> None:
        if sub not in self._subscribers:
            return
        self._subscribers.discard(sub)
        if not self._subscribers and self._on_last is not None and not self._closed:
            self._on_last()
