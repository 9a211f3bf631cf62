"""The documentation-only subscriber handler of the AsyncAPI document, typed by its model.

FastStream builds a subscriber's payload schema from its handler's signature (fast_depends reads
it with ``inspect.signature``). This module deliberately has no ``from __future__ import
annotations``: the annotation of ``message`` is then evaluated when ``handle`` is defined, so
the signature carries the stream's real model (a pydantic class or a union of them).
"""

from collections.abc import Awaitable, Callable
from typing import Any


def typed_handler(model: Any) -> Callable[..., Awaitable[None]]:
    """A handler that is never called, whose ``message`` parameter is annotated with `model`."""

    async def handle(message: model) -> None:  # pragma: no cover - documentation only
        return None

    return handle
