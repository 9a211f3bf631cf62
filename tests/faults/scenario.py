"""The common opening of a fault test: the services up and a steady load flowing through them."""

from __future__ import annotations

from tests.faults.load import EventMix, SteadyProducer, raw_publisher
from tests.faults.system import System

SERVICES = ("validator", "persister", "coach")


def under_load(
    system: System, tag: str, rate: float, services: tuple[str, ...] = SERVICES
) -> SteadyProducer:
    """Start `services` (one replica each), then a raw producer of the mix; wait until the
    pipeline has caught up once (every service is up and consuming). The running producer."""
    for service in services:
        system.start(service)
    load = raw_publisher(system.client, system.names.events)
    producer = SteadyProducer(EventMix(tag), load, rate=rate).start()
    system.wait_caught_up(timeout=60)
    return producer
