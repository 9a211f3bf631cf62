"""``python -m services.runtime.healthcheck SERVICE``: the container healthcheck (exit 0 / 1).

A worker (validator, persister, coach) is healthy when its consumer — named from this host, as
the service names it — has talked to its group within ``--max-idle`` seconds: a live worker
blocks in XREADGROUP for at most ``block_ms`` at a time, so a stuck or disconnected one goes
idle. The API is healthy when ``GET /readyz`` answers 200 (Redis and database reachable).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from services.runtime.logic import display_host
from services.runtime.supervisor import http_ok
from shared.connections import async_redis
from shared.names import COACH_GROUP, PERSISTER_GROUP, VALIDATOR_GROUP
from shared.settings import Settings

GROUPS = {"validator": VALIDATOR_GROUP, "persister": PERSISTER_GROUP, "coach": COACH_GROUP}


async def worker_idle_ms(settings: Settings, service: str) -> int | None:
    """Idle time of this host's consumer of `service`; None when it is not in its group."""
    stream = settings.names.events if service == "validator" else settings.names.valid
    client = async_redis(settings, socket_timeout=3.0)
    try:
        rows = await client.xinfo_consumers(stream, GROUPS[service])
    finally:
        await client.aclose()
    mine = settings.consumer_for(service)
    for row in rows:
        name = row["name"].decode() if isinstance(row["name"], bytes) else row["name"]
        if name == mine:
            return int(row["idle"])
    return None


async def healthy(settings: Settings, service: str, max_idle_s: float) -> bool:
    """The verdict for one service."""
    if service == "api":
        return await http_ok(display_host(settings.api_host), settings.api_port, "/readyz")
    try:
        idle = await worker_idle_ms(settings, service)
    except Exception:  # Redis down, stream or group missing: not healthy
        return False
    return idle is not None and idle <= max_idle_s * 1000


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, print the verdict, return the exit code."""
    parser = argparse.ArgumentParser(prog="healthcheck", description=__doc__)
    parser.add_argument("service", choices=[*GROUPS, "api"])
    parser.add_argument("--max-idle", type=float, default=30.0, help="seconds (workers)")
    args = parser.parse_args(argv)
    ok = asyncio.run(healthy(Settings(), args.service, args.max_idle))
    print(f"{args.service}: {'healthy' if ok else 'unhealthy'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
