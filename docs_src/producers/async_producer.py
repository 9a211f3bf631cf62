"""Publish with the async producer: one event, a batch, and a refused one."""

import asyncio

from runbus import InvalidEvent, Producer, Settings, async_redis


async def main() -> None:
    settings = Settings()
    client = async_redis(settings)
    producer = Producer(client, settings.names, settings.taxonomy)  # taxonomy=None: no checks
    entry_id = await producer.publish({
        "project_id": 7, "run_id": "exp-42", "stage": "training", "severity": "error",
        "reason_code": "training_oom", "summary": "GPU OOM", "ts": "2026-05-01T12:00:00Z",
    })  # fmt: skip
    ids = await producer.publish_many([
        {"run_id": "run-7f3a", "event_type": "stage.completed", "severity": "info",
         "created_at": "2026-05-01T12:00:01Z"},
        {"run_id": "run-7f3a", "event_type": "run.completed", "severity": "info",
         "created_at": "2026-05-01T12:00:02Z"},
    ])  # fmt: skip
    print("published", entry_id, "then", len(ids), "more")
    try:
        await producer.publish({"project_id": 7, "run_id": "exp-42", "stage": "gold_set",
                                "severity": "info", "ts": "2026-05-01T12:00:03Z"})  # fmt: skip
    except InvalidEvent as exc:
        print("refused:", exc.errors)
    await client.aclose()


if __name__ == "__main__":
    asyncio.run(main())
