"""runbus for producers: publish run events to the bus from any Python service.

``from runbus import Producer, SyncProducer, BestEffortProducer, Settings`` is the import a
producer writes. The names here are the public API (``__all__``); everything else of the
installed package lives under ``runbus._shared`` and ``runbus._services`` (the repository's
``shared/`` and ``services/``, moved there when the wheel is built so that they never collide
with a service's own top-level packages).
"""

from shared import __version__
from shared.connections import async_redis, sync_redis
from shared.models import Event, PulseEvent, RunEvent
from shared.names import Names
from shared.producer import (
    BestEffortProducer,
    EventLike,
    InvalidEvent,
    Producer,
    ProducerCounters,
    SyncProducer,
)
from shared.settings import Settings
from shared.taxonomy import Taxonomy

__all__ = [
    "BestEffortProducer",
    "Event",
    "EventLike",
    "InvalidEvent",
    "Names",
    "Producer",
    "ProducerCounters",
    "PulseEvent",
    "RunEvent",
    "Settings",
    "SyncProducer",
    "Taxonomy",
    "__version__",
    "async_redis",
    "sync_redis",
]
