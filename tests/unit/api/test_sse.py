"""The SSE helper: framing, keep-alives, the response's headers, its end on disconnect."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.requests import Request
from starlette.types import Message

from services.api.fanout import Resync, Topic
from services.api.sse import (
    KEEPALIVE,
    SseEvent,
    event_stream,
    frame,
    sse_response,
)


def test_one_line_event() -> None:
    assert frame(SseEvent("strip-data", "<p>hi</p>")) == b"event: strip-data\ndata: <p>hi</p>\n\n"


def test_multi_line_data_is_one_data_line_per_line_whatever_the_line_break() -> None:
    framed = frame(SseEvent("x", "a\nb\r\nc\rd\n", id="7"))
    assert framed == b"event: x\nid: 7\ndata: a\ndata: b\ndata: c\ndata: d\ndata: \n\n"


def test_empty_data_is_still_an_event() -> None:
    assert frame(SseEvent("x", "")) == b"event: x\ndata: \n\n"


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\0b"])
def test_event_names_and_ids_cannot_break_the_framing(bad: str) -> None:
    with pytest.raises(ValueError):
        frame(SseEvent(bad, "d"))
    with pytest.raises(ValueError):
        frame(SseEvent("x", "d", id=bad))


def render(item: int | Resync) -> SseEvent | list[SseEvent] | None:
    if isinstance(item, Resync):
        return SseEvent("resync", item.reason)
    if item < 0:
        return None  # skipped
    return [SseEvent("n", str(item))] * (2 if item == 2 else 1)


async def test_the_stream_sends_rendered_events_and_ends_with_its_subscription() -> None:
    topic: Topic[int] = Topic("t")
    sub = topic.subscribe()
    for item in (1, -1, 2):
        topic.publish(item)
    topic.publish(Resync("lagged"))
    stream = event_stream(sub, render)
    chunks = [await anext(stream) for _ in range(4)]
    assert chunks == [
        b"retry: 3000\n\n",
        b"event: n\ndata: 1\n\n",
        b"event: n\ndata: 2\n\n" * 2,
        b"event: resync\ndata: lagged\n\n",
    ]
    topic.close()
    assert [c async for c in stream] == []


async def test_async_renders_are_awaited() -> None:
    async def slow(item: int | Resync) -> SseEvent:
        await asyncio.sleep(0)
        return SseEvent("n", repr(item))

    topic: Topic[int] = Topic("t")
    stream = event_stream(topic.subscribe(), slow)
    topic.publish(5)
    assert [await anext(stream) for _ in range(2)][1] == b"event: n\ndata: 5\n\n"
    await stream.aclose()


async def test_silence_sends_keep_alive_comments() -> None:
    topic: Topic[int] = Topic("t")
    stream = event_stream(topic.subscribe(), render, keepalive_s=0.01)
    assert [await anext(stream) for _ in range(3)][1:] == [KEEPALIVE, KEEPALIVE]
    await stream.aclose()
    assert len(topic) == 0  # closing the body closed the subscription


def _request() -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "headers": []})


async def test_the_response_is_an_unbuffered_uncached_event_stream() -> None:
    topic: Topic[int] = Topic("t")
    response = sse_response(_request(), topic.subscribe(), render)
    assert response.media_type == "text/event-stream"
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    topic.close()


async def test_a_client_disconnect_ends_the_response_and_frees_the_subscription() -> None:
    topic: Topic[int] = Topic("t")
    response = sse_response(_request(), topic.subscribe(), render)
    sent: list[Message] = []
    gone = asyncio.Event()

    async def receive() -> Message:
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: dict[str, Any] = {"type": "http", "asgi": {"spec_version": "2.3"}}
    serving = asyncio.create_task(response(scope, receive, send))
    topic.publish(1)
    deadline = asyncio.get_running_loop().time() + 5
    while not any(m.get("body", b"").startswith(b"event: n") for m in sent):
        assert asyncio.get_running_loop().time() < deadline, sent
        await asyncio.sleep(0.01)
    assert len(topic) == 1
    gone.set()
    await asyncio.wait_for(serving, 5)
    assert len(topic) == 0
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 200
