"""Fan-out of the live hub: bounded queues, overflow as a resync, unsubscribe frees, lazy loops."""

from __future__ import annotations

import asyncio

from services.api.fanout import Resync, Subscription, Topic


async def drain(sub: Subscription[int], count: int) -> list[int | Resync]:
    """The next `count` items (fails the test instead of hanging)."""
    return [await asyncio.wait_for(anext(sub), 2) for _ in range(count)]


async def test_every_subscriber_gets_every_item_in_order() -> None:
    topic: Topic[int] = Topic("t")
    subs = [topic.subscribe() for _ in range(3)]
    for item in range(5):
        topic.publish(item)
    for sub in subs:
        assert await drain(sub, 5) == [0, 1, 2, 3, 4]


async def test_each_subscriber_filters_for_itself_but_every_one_gets_resyncs() -> None:
    topic: Topic[int] = Topic("t")
    even = topic.subscribe(lambda n: n % 2 == 0)
    every = topic.subscribe()
    for item in range(4):
        topic.publish(item)
    topic.publish(Resync("reconnected"))
    assert await drain(even, 3) == [0, 2, Resync("reconnected")]
    assert await drain(every, 5) == [0, 1, 2, 3, Resync("reconnected")]


async def test_a_slow_subscriber_loses_its_oldest_and_gets_a_resync_others_get_all() -> None:
    topic: Topic[int] = Topic("t", maxsize=3)
    slow, fast = topic.subscribe(), topic.subscribe()
    got: list[int | Resync] = []
    for item in range(10):
        topic.publish(item)  # never awaits: a full queue cannot hold the publisher up
        got += await drain(fast, 1)
    assert got == list(range(10))
    assert slow.lagged and slow.dropped == 7
    assert await drain(slow, 4) == [Resync("lagged"), 7, 8, 9]
    assert not slow.lagged


async def test_close_ends_the_iteration_and_leaves_the_topic() -> None:
    topic: Topic[int] = Topic("t")
    sub = topic.subscribe()
    waiting = asyncio.create_task(drain(sub, 1))
    await asyncio.sleep(0)  # let it block on the empty queue
    sub.close()
    assert len(topic) == 0
    try:
        await waiting
    except StopAsyncIteration:
        pass
    else:  # pragma: no cover - the assertion message
        raise AssertionError("a closed subscription yielded")
    topic.publish(1)  # nobody left: nothing queued anywhere
    assert [item async for item in sub] == []


async def test_the_loop_starts_with_the_first_subscriber_and_stops_with_the_last() -> None:
    calls: list[str] = []
    topic: Topic[int] = Topic("t", lambda: calls.append("start"), lambda: calls.append("stop"))
    async with topic.subscribe(), topic.subscribe():
        assert calls == ["start"]
    assert calls == ["start", "stop"]
    async with topic.subscribe():
        pass
    assert calls == ["start", "stop", "start", "stop"]


async def test_a_closed_topic_ends_its_subscriptions_and_refuses_new_ones() -> None:
    topic: Topic[int] = Topic("t")
    sub = topic.subscribe()
    topic.close()
    assert sub.closed and len(topic) == 0
    late = topic.subscribe()
    assert late.closed
    assert [item async for item in late] == []
