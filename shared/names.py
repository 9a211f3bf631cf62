"""Every stream, consumer group, key, key pattern and channel name runbus uses, in one place.

Which stage reads which stream is not here: `shared.pipeline` declares the topology and takes
its names from this module.

Streams that one atomic step touches (incoming -> valid/dead, valid -> dead) share a Redis
Cluster hash slot because their names carry the namespace as a hash tag: ``{runbus}:events``.
Coach cache keys are plain (``runbus:coach:<project>:<stage>``): they are read one by one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

VALIDATOR_GROUP: Final = "validator"
PERSISTER_GROUP: Final = "persister"
COACH_GROUP: Final = "coach"


class StreamKind(StrEnum):
    """The pipeline's streams, by role; `Names.stream` spells each one."""

    EVENTS = "events"
    VALID = "valid"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class Names:
    """Names under one namespace (``RUNBUS_NAMESPACE``)."""

    namespace: str = "runbus"

    @property
    def tag(self) -> str:
        """The hash-tagged prefix shared by every stream."""
        return "{" + self.namespace + "}"

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

    @property
    def redrive_audit(self) -> str:
        """One entry per `runbus dlq redrive` / `purge`: who moved what, when."""
        return f"{self.tag}:audit"

    @property
    def coach_changes(self) -> str:
        """Pub/sub channel announcing every coach cache change."""
        return f"{self._coach}:changes"

    def coach_key(self, project_id: int | str, stage: str) -> str:
        """Cache key of one (project, coach stage) suggestion document."""
        return f"{self._coach}:{project_id}:{stage}"

    def coach_state(self, project_id: int | str) -> str:
        """Per-project coach state (derived only from accepted events)."""
        return f"{self.namespace}:coachstate:{project_id}"

    @property
    def coach_projects(self) -> str:
        """Set of project ids the coach knows."""
        return f"{self._coach}:projects"

    def coach_meta(self, project_id: int | str) -> str:
        """Per-project coach bookkeeping: state revision, per-stage version and digest."""
        return f"{self.namespace}:coachmeta:{project_id}"

    @property
    def key_patterns(self) -> tuple[str, ...]:
        """Globs matching every key of the namespace: the hash-tagged streams and the rest."""
        return (f"{self.tag}:*", f"{self.namespace}:*")

    def stream(self, kind: StreamKind) -> str:
        """The stream of one role (`events`, `valid`, `dead`)."""
        spelled: str = getattr(self, kind.value)
        return spelled

    def metrics(self, stage: str) -> str:
        """Counters hash of one stage (`shared.metrics`), read by ``GET /metrics``."""
        return f"{self.namespace}:metrics:{stage}"

    @property
    def metrics_pattern(self) -> str:
        """Glob matching every stage's counters hash (for ACL rules)."""
        return self.metrics("*")

    @property
    def coach_patterns(self) -> tuple[str, ...]:
        """Globs matching every key the coach owns: documents, project set, state, meta."""
        return (self.coach_documents_pattern, self.coach_state("*"), self.coach_meta("*"))

    @property
    def coach_documents_pattern(self) -> str:
        """Glob matching the keys dashboards read: documents and the project set."""
        return f"{self._coach}:*"

    @property
    def _coach(self) -> str:
        """Prefix of the coach's documents, project set and change channel."""
        return f"{self.namespace}:coach"
