"""Every stream, consumer group, key, key pattern and channel name runbus uses, in one place.

Which stage reads which stream is not here: `shared.pipeline` declares the topology and takes
its names from this module.

Streams that one atomic step touches (incoming -> valid/dead, valid -> dead) share a Redis
Cluster hash slot because their names carry the namespace as a hash tag: ``{runbus}:events``.
A project's coach keys share that project's tag (``{runbus:coach:<project>}:doc:<stage>``,
``:state``, ``:meta``), so its merge and cache writes are single-slot scripts.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Final

from redis.crc import key_slot

VALIDATOR_GROUP: Final = "validator"
PERSISTER_GROUP: Final = "persister"
COACH_GROUP: Final = "coach"
#: The group we suggest to the platform for the actions stream (its consumer is not runbus).
ACTIONS_GROUP: Final = "platform"


class StreamKind(StrEnum):
    """The pipeline's streams, by role; `Names.stream` spells each one."""

    EVENTS = "events"
    VALID = "valid"
    DEAD = "dead"


#: Redis Cluster's hash slots: a key's slot is CRC16 of its hash tag, modulo this.
CLUSTER_SLOTS: Final = 16384
MAX_PARTITIONS: Final = 1024


@dataclass(frozen=True, slots=True)
class Partition:
    """The streams of one partition, all under one hash tag: every atomic move stays in one slot."""

    index: int
    tag: str

    @property
    def events(self) -> str:
        """Incoming stream: producers XADD here."""
        return f"{self.tag}:events"

    @property
    def valid(self) -> str:
        """Accepted events, written by the validator."""
        return f"{self.tag}:valid"

    @property
    def dead(self) -> str:
        """Dead letters from every stage."""
        return f"{self.tag}:dead"

    def stream(self, kind: StreamKind) -> str:
        """The stream of one role (`events`, `valid`, `dead`) in this partition."""
        spelled: str = getattr(self, kind.value)
        return spelled


@lru_cache(maxsize=4096)
def partition_tag(namespace: str, index: int, partitions: int) -> str:
    """The hash tag of one partition: ``{ns}`` alone, else ``{ns.<index>.<k>}``.

    With several partitions, partition `index` owns the `index`-th of `partitions` equal slices
    of the 16384 slots, and its tag is the first ``{ns.<index>.<k>}`` (k = 0, 1, ...) whose slot
    falls in the middle half of that slice. Masters own contiguous slot ranges, so P partitions
    over M masters with equal ranges (P a multiple of M) spread P/M per master. ``.`` cannot
    occur in a namespace, so no other namespace's keys share these tags.
    """
    if partitions == 1:
        return "{" + namespace + "}"
    width = CLUSTER_SLOTS / partitions
    low, high = (index + 0.25) * width, (index + 0.75) * width
    for k in range(1_000_000):
        tag = f"{namespace}.{index}.{k}"
        if low <= key_slot(tag.encode()) < high:
            return "{" + tag + "}"
    raise ValueError(f"no tag for partition {index} of {partitions}")  # pragma: no cover


def partition_of(run_id: str | None, partitions: int) -> int:
    """The partition an event belongs to: CRC-32 (IEEE, as zlib) of its UTF-8 run id, mod P.

    A run's events share a partition, so they stay in order relative to each other. An event
    without a (string) run id goes to partition 0. Any partition is accepted: this is where a
    producer should write, not where it must.
    """
    if partitions == 1 or not run_id:
        return 0
    return zlib.crc32(run_id.encode("utf-8", "surrogatepass")) % partitions


@dataclass(frozen=True, slots=True)
class Names:
    """Names under one namespace (``RUNBUS_NAMESPACE``), in ``RUNBUS_PARTITIONS`` partitions."""

    namespace: str = "runbus"
    partitions: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.partitions <= MAX_PARTITIONS:
            raise ValueError(f"partitions must be 1..{MAX_PARTITIONS}, not {self.partitions}")

    @property
    def tag(self) -> str:
        """The namespace's own hash tag: the audit stream's, and partition 0's when alone."""
        return "{" + self.namespace + "}"

    def partition(self, index: int) -> Partition:
        """One partition's streams."""
        if not 0 <= index < self.partitions:
            raise IndexError(f"partition {index} of {self.partitions}")
        return Partition(index, partition_tag(self.namespace, index, self.partitions))

    @property
    def all_partitions(self) -> tuple[Partition, ...]:
        """Every partition, in index order."""
        return tuple(self.partition(i) for i in range(self.partitions))

    def partition_for(self, run_id: str | None) -> Partition:
        """The partition a producer writes an event of run `run_id` to (`partition_of`)."""
        return self.partition(partition_of(run_id, self.partitions))

    def streams(self, kind: StreamKind) -> tuple[str, ...]:
        """The stream of one role in every partition."""
        return tuple(p.stream(kind) for p in self.all_partitions)

    @property
    def events(self) -> str:
        """Partition 0's incoming stream (the only one with one partition)."""
        return self.partition(0).events

    @property
    def valid(self) -> str:
        """Partition 0's valid stream (the only one with one partition)."""
        return self.partition(0).valid

    @property
    def dead(self) -> str:
        """Partition 0's dead-letter stream (the only one with one partition)."""
        return self.partition(0).dead

    @property
    def redrive_audit(self) -> str:
        """One entry per `runbus dlq redrive` / `purge`: who moved what, when."""
        return f"{self.tag}:audit"

    @property
    def dead_letter_retention(self) -> str:
        """Hash of the dead-letter retention: archived and expired counts, the archive's size,
        the last sweep's time and error (written by the persister's retention job)."""
        return f"{self.namespace}:retention"

    @property
    def actions(self) -> str:
        """One entry per click on a coach action button: the requests the platform consumes."""
        return f"{self.tag}:actions"

    @property
    def coach_changes(self) -> str:
        """Pub/sub channel announcing every coach cache change (classic PUBLISH: every node)."""
        return f"{self._coach}:changes"

    def coach_tag(self, project_id: int | str) -> str:
        """The hash tag of one project's coach keys: its merge and writes stay in one slot.

        ``{<ns>:coach:<project>}``: no namespace has a ``:``, so no other namespace's keys share it.
        """
        return "{" + f"{self._coach}:{project_id}" + "}"

    def coach_key(self, project_id: int | str, stage: str) -> str:
        """Cache key of one (project, coach stage) suggestion document."""
        return f"{self.coach_tag(project_id)}:doc:{stage}"

    def coach_state(self, project_id: int | str) -> str:
        """Per-project coach state (derived only from accepted events)."""
        return f"{self.coach_tag(project_id)}:state"

    @property
    def coach_projects(self) -> str:
        """Set of project ids the coach knows (its own slot: added to after each merge)."""
        return f"{self._coach}:projects"

    def coach_meta(self, project_id: int | str) -> str:
        """Per-project coach bookkeeping: state revision, per-stage version and digest."""
        return f"{self.coach_tag(project_id)}:meta"

    @property
    def key_patterns(self) -> tuple[str, ...]:
        """Globs matching every key of the namespace: tagged streams, coach projects, the rest."""
        partitions = "{" + self.namespace + ".*}:*"
        return (f"{self.tag}:*", partitions, f"{self.coach_tag('*')}:*", f"{self.namespace}:*")

    def stream(self, kind: StreamKind) -> str:
        """Partition 0's stream of one role (the only one with one partition)."""
        return self.partition(0).stream(kind)

    def metrics(self, stage: str) -> str:
        """Counters hash of one stage (`shared.metrics`), read by ``GET /metrics``."""
        return f"{self.namespace}:metrics:{stage}"

    @property
    def metrics_pattern(self) -> str:
        """Glob matching every stage's counters hash (for ACL rules)."""
        return self.metrics("*")

    @property
    def coach_patterns(self) -> tuple[str, ...]:
        """Globs matching every key the coach owns: each project's keys, and the project set."""
        return (f"{self.coach_tag('*')}:*", self.coach_projects)

    @property
    def coach_documents_pattern(self) -> str:
        """Glob matching the documents dashboards read (never a project's state or meta)."""
        return self.coach_key("*", "*")

    @property
    def _coach(self) -> str:
        """Prefix of the coach's documents, project set and change channel."""
        return f"{self.namespace}:coach"
