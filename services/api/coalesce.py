"""`CoalescedReads`: concurrent reads share round trips to Redis, and none is answered with data
older than a command of its own would have read.

Every open dashboard polls coach documents. Fifty polls in flight sent fifty ``GET``s, fifty
round trips through redis-py, the API's largest cost per 200. Here a read that finds a free
slot (fewer than `IN_FLIGHT` commands in flight, none waiting) sends its command at once,
alone; reads that arrive while the slots are taken wait for the *next* batch, sent as soon as a
slot frees: one pipeline of every distinct
command asked for meanwhile (fifty polls of one document are one ``GET``; of fifty documents,
one round trip). A read never joins the batch in flight: that one was sent before the read
arrived and could miss a write the reader already saw acknowledged. So each answer comes from
a command sent after its request arrived, as an uncoalesced read's would, with at most
`IN_FLIGHT` batches in flight, and a lone reader pays nothing (no task, no future).

The pipeline is not a transaction: on a Redis Cluster the client splits it by node. A command's
error reaches only the reads of that command; a lost connection, every read of the batch (the
route then answers them as its own reads' errors).
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

import redis.asyncio as aredis

# redis-py leaves `execute_command` untyped (its typed commands are methods per command); the
# commands sent here are only the read-only ones of `get` and `getrange`.

#: A read-only command and its arguments, as sent: ``("GET", key)``, ``("GETRANGE", key, 0, 95)``.
Command = tuple[str | int, ...]


#: Commands or batches in flight at once. With one, a rare read (a version read again after its
#: entry expired, among polls answered from memory) waits behind the batch in flight and then
#: its own, each a few turns of a busy event loop: such polls' p99 was 14-16 ms at 50
#: connections, 7.5-8 ms with two; three cost the 200s a fifth of their rate (measured with
#: the bench's loads over 50 documents).
IN_FLIGHT: Final = 2


class CoalescedReads:
    """``GET`` and ``GETRANGE`` of a client, with concurrent reads batched."""

    def __init__(self, client: aredis.Redis, in_flight: int = IN_FLIGHT) -> None:
        self._client = client
        self._most = in_flight
        self._in_flight = 0
        """Commands or batches in flight (at most `in_flight`)."""
        self._next: dict[Command, list[asyncio.Future[Any]]] = {}
        """The reads that came since it was sent, by command: each waits on its own future (a
        shared one behind `asyncio.shield` costs each waiter another turn of the loop)."""
        self._tasks: set[asyncio.Task[None]] = set()  # strong references until each ends
        self.batches = 0
        """Batches sent so far (pipelines, or a lone command waited for)."""

    @property
    def waiting(self) -> int:
        """Reads waiting for the next batch."""
        return sum(len(waiters) for waiters in self._next.values())

    async def get(self, name: str) -> Any:
        """``GET name``."""
        return await self.read(("GET", name))

    async def getrange(self, name: str, start: int, end: int) -> Any:
        """``GETRANGE name start end``."""
        return await self.read(("GETRANGE", name, start, end))

    async def read(self, command: Command) -> Any:
        """The reply of `command`, from a batch sent after this call."""
        if self._in_flight < self._most and not self._next:
            self._in_flight += 1
            try:
                return await self._client.execute_command(*command)  # type: ignore[no-untyped-call]
            finally:
                self._send_next()
        waiting = asyncio.get_running_loop().create_future()
        self._next.setdefault(command, []).append(waiting)
        return await waiting

    def _send_next(self) -> None:
        """What was in flight returned: send the next batch, or be free."""
        batch, self._next = self._next, {}
        if not batch:
            self._in_flight -= 1
            return
        self.batches += 1
        task = asyncio.get_running_loop().create_task(self._answer(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, batch: dict[Command, list[asyncio.Future[Any]]]) -> None:
        try:
            replies = await self._replies(list(batch))
        except asyncio.CancelledError:
            for waiters in batch.values():
                for waiting in waiters:
                    waiting.cancel()
            raise
        except Exception as exc:
            replies = [exc] * len(batch)
        finally:
            self._send_next()
        for waiters, reply in zip(batch.values(), replies, strict=True):
            for waiting in waiters:
                _settle(waiting, reply)

    async def _replies(self, commands: list[Command]) -> list[Any]:
        if len(commands) == 1:
            return [await self._client.execute_command(*commands[0])]  # type: ignore[no-untyped-call]
        pipe = self._client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        return list(await pipe.execute(raise_on_error=False))


def _settle(waiting: asyncio.Future[Any], reply: Any) -> None:
    """A read's future gets its reply (unless its reader left: cancelled, it is done)."""
    if waiting.done():
        return
    if isinstance(reply, Exception):
        waiting.set_exception(reply)
    else:
        waiting.set_result(reply)
