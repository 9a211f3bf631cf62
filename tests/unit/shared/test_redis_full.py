"""A full Redis is told apart from other Redis errors."""

from __future__ import annotations

from redis.exceptions import ConnectionError, OutOfMemoryError, ResponseError

from shared.connections import is_redis_full


def test_redis_py_s_out_of_memory_error_and_the_text_inside_a_script_are_a_full_redis() -> None:
    assert is_redis_full(OutOfMemoryError("command not allowed when used memory > 'maxmemory'."))
    assert is_redis_full(ResponseError("OOM command not allowed when used memory > 'maxmemory'."))


def test_other_errors_are_not() -> None:
    assert not is_redis_full(ResponseError("BUSYGROUP Consumer Group name already exists"))
    assert not is_redis_full(ResponseError("NOOMPH"))
    assert not is_redis_full(ConnectionError("Error 111 connecting"))
