"""`CoalescedReads`: concurrent reads share round trips to Redis, and none is answered with data
older than a command of its own would have read.

Every open dashboard polls coach documents. Fifty polls in flight sent fifty ``GET``s, fifty
round trips through redis-py, the API's largest cost per 200. Here a read that finds no batch
in flight sends its command at once, alone; reads that arrive while a batch is in flight wait
for the *next* batch, sent as soon as the current one returns: one pipeline of every distinct
command asked for meanwhile (fifty polls of one document are one ``GET``; of fifty documents,
one round trip). A read never joins the batch in flight: that one was sent before the read
arrived and could miss a write the reader already saw acknowledged. So each answer comes from
a command sent after its request arrived, as an uncoalesced read's would, with at most one
batch in flight, and a lone reader pays nothing (no task, no future).

The pipeline is not a transaction: on a Redis Cluster the client splits it by node. A command's
error reaches only the reads of that command; a lost connection, every read of the batch (the
route then answers them as its own reads' errors).
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aredis

# redis-py leaves `execute_command` untyped (its typed commands are methods per command); the
# commands sent here are only the read-only ones of `get` and `getrange`.

#: A read-only command and its arguments, as sent: ``("GET", key)``, ``("GETRANGE", key, 0, 95)``.
Command = tuple[str | int, ...]


class CoalescedReads:
    """``GET`` and ``GETRANGE`` of a client, with concurrent reads batched."""

    def __init__(self, client: aredis.Redis) -> None:
        self._client = client
        self._busy = False
        """A command or batch is in flight."""
        self._next: dict[Command, asyncio.Future[Any]] = {}
        """What the reads that came since it was sent wait for, by command."""
        self._tasks: set[asyncio.Task[None]] = set()  # strong references until each ends
        self.batches = 0
        """Batches sent so far (pipelines, or a lone command waited for)."""

    @property
    def waiting(self) -> int:
        """Distinct commands of the next batch."""
        return len(self._next)

    async def get(self, name: str) -> Any:
        """``GET name``."""
        return await self.read(("GET", name))

    async def getrange(self, name: str, start: int, end: int) -> Any:
        """``GETRANGE name start end``."""
        return await self.read(("GETRANGE", name, start, end))

    async def read(self, command: Command) -> Any:
        """The reply of `command`, from a batch sent after this call."""
        if not self._busy:
            self._busy = True
            try:
                return await self._client.execute_command(*command)  # type: ignore[no-untyped-call]
            finally:
                self._send_next()
        waiting = self._next.get(command)
        if waiting is None:
            waiting = self._next[command] = asyncio.get_running_loop().create_future()
        # shield: a reader that goes away (its client hung up) leaves the others their answer
        return await asyncio.shield(waiting)

    def _send_next(self) -> None:
        """What was in flight returned: send the next batch, or be free."""
        batch, self._next = self._next, {}
        if not batch:
            self._busy = False
            return
        self.batches += 1
        task = asyncio.get_running_loop().create_task(self._answer(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, batch: dict[Command, asyncio.Future[Any]]) -> None:
        try:
            replies = await self._replies(list(batch))
        except asyncio.CancelledError:
            for waiting in batch.values():
                waiting.cancel()
            raise
        except Exception as exc:
            replies = [exc] * len(batch)
        finally:
            self._send_next()
        for waiting, reply in zip(batch.values(), replies, strict=True):
            if isinstance(reply, Exception):
                waiting.set_exception(reply)
                waiting.exception()  # read here too: no "never retrieved" once every reader left
            else:
                waiting.set_result(reply)

    async def _replies(self, commands: list[Command]) -> list[Any]:
        if len(commands) == 1:
            return [await self._client.execute_command(*commands[0])]  # type: ignore[no-untyped-call]
        pipe = self._client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        return list(await pipe.execute(raise_on_error=False))
