"""Helpers of the producer stories: read back what reached a stream."""

from __future__ import annotations

from typing import Any, cast

import orjson
import redis

Entry = tuple[str, dict[bytes, bytes]]


def entries(client: redis.Redis, stream: str) -> list[Entry]:
    """Every entry of a stream as (entry id, fields), in stream order."""
    raw = cast(list[tuple[bytes, dict[bytes, bytes]]], client.xrange(stream))
    return [(entry_id.decode(), fields) for entry_id, fields in raw]


def entry_ids(client: redis.Redis, stream: str) -> list[str]:
    """The entry ids of a stream, in order."""
    return [entry_id for entry_id, _ in entries(client, stream)]


def stream_docs(client: redis.Redis, stream: str) -> list[dict[str, Any]]:
    """Every event body on a stream, decoded, in stream order (asserting the wire format)."""
    docs = []
    for _, fields in entries(client, stream):
        assert list(fields) == [b"__data__"]
        docs.append(orjson.loads(fields[b"__data__"]))
    return docs


def seq_of(doc: dict[str, Any]) -> int:
    """The number a test gave an event (``payload.seq`` or, for Pulse, ``details.seq``)."""
    return int((doc.get("payload") or doc.get("details") or {})["seq"])


def seqs(client: redis.Redis, stream: str) -> list[int]:
    """The number of every event on a stream, in stream order."""
    return [seq_of(doc) for doc in stream_docs(client, stream)]
