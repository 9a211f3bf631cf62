"""The real validator, running in a thread of its own, and an index of where entries went.

`ValidatorBus` sends raw entries to the incoming stream of the test's namespace (on the
machine's Redis), and reads the valid and dead-letter streams incrementally, indexing every
entry by its source id; an id seen twice anywhere fails the test at once.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
import redis

from services.validator.app import run_validator
from shared.models import DeadLetter, ValidEnvelope
from shared.settings import Settings
from shared.wire import parse_dead_letter, parse_envelope

Fields = dict[bytes, bytes]


@dataclass
class ValidatorBus:
    """Sends entries to the real validator and accounts for each of them."""

    settings: Settings
    client: redis.Redis
    valid: dict[str, ValidEnvelope] = field(default_factory=dict)
    dead: dict[str, DeadLetter] = field(default_factory=dict)
    sent: int = 0
    _cursors: dict[str, str] = field(default_factory=dict)
    _thread: threading.Thread | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _stop: asyncio.Event | None = None
    _error: BaseException | None = None

    def start(self) -> None:
        """Start the validator in its own thread and event loop."""
        ready = threading.Event()

        async def main() -> None:
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            ready.set()
            await run_validator(self.settings, self._stop)

        def target() -> None:
            try:
                asyncio.run(main())
            except BaseException as exc:  # reported by `alive` and `stop`
                self._error = exc

        self._thread = threading.Thread(target=target, name="validator", daemon=True)
        self._thread.start()
        assert ready.wait(10), "the validator did not start"

    @property
    def alive(self) -> bool:
        """True while the validator runs."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        """Stop the validator; re-raise whatever ended it early."""
        if self._loop is not None and self._stop is not None and self.alive:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(30)
        if self._error is not None:
            raise self._error

    def send(self, entries: Iterable[Fields]) -> list[str]:
        """XADD entries as they are (one pipeline); returns their ids."""
        with self.client.pipeline(transaction=False) as pipe:
            for fields in entries:
                pipe.xadd(self.settings.names.events, fields)  # type: ignore[arg-type]
            ids = [i.decode() for i in pipe.execute()]
        self.sent += len(ids)
        return ids

    def collect(self) -> None:
        """Index what reached the valid and dead streams since the last call."""
        names = self.settings.names
        for fields in self._new_entries(names.valid):
            envelope = parse_envelope(fields[b"__data__"])
            self._index(envelope.source_id)
            self.valid[envelope.source_id] = envelope
        for fields in self._new_entries(names.dead):
            letter = parse_dead_letter(fields)
            self._index(letter.source_id)
            self.dead[letter.source_id] = letter

    def _new_entries(self, stream: str) -> list[Fields]:
        found = rows(self.client, stream, min=self._cursors.get(stream, "-"), count=10_000)
        if found:
            self._cursors[stream] = "(" + found[-1][0].decode()
        return [fields for _, fields in found]

    def _index(self, source: str) -> None:
        assert source not in self.valid and source not in self.dead, f"{source} seen twice"

    def wait_accounted(self, ids: Iterable[str], timeout: float = 60.0) -> None:
        """Poll until every id is on valid or dead (failing if the validator stops)."""
        wanted = set(ids)
        deadline = time.monotonic() + timeout
        while True:
            self.collect()
            missing = wanted - self.valid.keys() - self.dead.keys()
            if not missing:
                return
            assert self.alive, f"the validator stopped: {self._error!r}"
            assert time.monotonic() < deadline, f"{len(missing)} entries never accounted for"
            time.sleep(0.02)


def rows(client: redis.Redis, stream: str, **range_args: Any) -> list[tuple[bytes, Fields]]:
    """XRANGE, typed: (entry id, fields) pairs."""
    return cast(list[tuple[bytes, Fields]], client.xrange(stream, **range_args))


@pytest.fixture
def bus(settings: Settings, sync_client: redis.Redis) -> Iterator[ValidatorBus]:
    """The real validator on the test's namespace; stopped (and checked) at the end."""
    tuned = settings.model_copy(update={"block_ms": 50})
    validator = ValidatorBus(tuned, sync_client)
    validator.start()
    yield validator
    validator.stop()
