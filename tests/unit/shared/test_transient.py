"""Which errors a stage worker waits out as an outage (`shared.consumer.is_transient`)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from redis.exceptions import ClusterDownError, ConnectionError, ResponseError, TryAgainError

from shared.consumer import is_transient


def raised_in(module: str) -> Callable[[], None]:
    """A function that fails with AttributeError as if it were code of `module`."""
    scope: dict[str, object] = {"__name__": module}
    exec(compile("def boom():\n    None.writelines([])\n", f"<{module}>", "exec"), scope)
    return scope["boom"]  # type: ignore[return-value]


def caught(fn: Callable[[], None]) -> BaseException:
    with pytest.raises(AttributeError) as info:
        fn()
    return info.value


def test_connection_and_cluster_errors_are_transient_a_plain_response_error_is_not() -> None:
    assert is_transient(ConnectionError("refused"))
    assert is_transient(ClusterDownError("CLUSTERDOWN"))
    assert is_transient(TryAgainError("TRYAGAIN"))
    assert not is_transient(ResponseError("WRONGTYPE"))


def test_a_blocked_read_whose_stream_migrated_away_is_transient() -> None:
    assert is_transient(ResponseError("UNBLOCKED the stream key no longer exists"))
    assert not is_transient(ResponseError("NOGROUP No such key or consumer group"))


def test_an_attribute_error_is_transient_only_when_redis_py_raised_it() -> None:
    # given redis-py's asyncio cluster client failing on a connection closed under it
    assert is_transient(caught(raised_in("redis.asyncio.connection")))
    # and a handler's own AttributeError: a bug, not an outage
    assert not is_transient(caught(raised_in("services.coach.handler")))
    assert not is_transient(AttributeError("no traceback"))
