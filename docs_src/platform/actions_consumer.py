"""Consume the action requests the dashboard records: one pass, then exit.

A real consumer loops (``block=5000`` forever); this example reads what is there, prints how
it would route each request, and acknowledges it. Delivery is at least once: deduplicate on
``request_id``.
"""

import json
import os

import redis

STREAM = "{" + os.environ.get("RUNBUS_NAMESPACE", "runbus") + "}:actions"
GROUP, CONSUMER = "platform", "platform-1"

client = redis.Redis.from_url(os.environ.get("RUNBUS_REDIS_URL", "redis://127.0.0.1:6379/0"))
try:
    client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
except redis.ResponseError as exc:  # BUSYGROUP: the group exists already
    if "BUSYGROUP" not in str(exc):
        raise
for _stream, entries in client.xreadgroup(GROUP, CONSUMER, {STREAM: ">"}, count=100, block=1000):
    for entry_id, fields in entries:
        request = json.loads(fields[b"__data__"])
        # Route on the kind alone; the params are the suggestion's, as the coach wrote them.
        print(request["kind"], request["project_id"], request["stage"], request["params"])
        client.xack(STREAM, GROUP, entry_id)
