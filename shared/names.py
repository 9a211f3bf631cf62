"""Every stream, consumer group, key and channel name runbus uses, in one place.

Streams that one atomic step touches (incoming -> valid/dead, valid -> dead) share a Redis
Cluster hash slot because their names carry the namespace as a hash tag: ``{runbus}:events``.
Coach cache keys are plain (``runbus:coach:<project>:<stage>``): they are read one by one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

VALIDATOR_GROUP: Final = "validator"
PERSISTER_GROUP: Final = "persister"
COACH_GROUP: Final = "coach"


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
        return f"{self.namespace}:coach:changes"

    def coach_key(self, project_id: int | str, stage: str) -> str:
        """Cache key of one (project, coach stage) suggestion document."""
        return f"{self.namespace}:coach:{project_id}:{stage}"

    def coach_state(self, project_id: int | str) -> str:
        """Per-project coach state (derived only from accepted events)."""
        return f"{self.namespace}:coachstate:{project_id}"

    @property
    def coach_projects(self) -> str:
        """Set of project ids the coach knows."""
        return f"{self.namespace}:coach:projects"

    def groups_of(self, stream: str) -> tuple[str, ...]:
        """Consumer groups that must have acknowledged an entry before it may be trimmed."""
        if stream == self.events:
            return (VALIDATOR_GROUP,)
        if stream == self.valid:
            return (PERSISTER_GROUP, COACH_GROUP)
        return ()

    def coach_meta(self, project_id: int | str) -> str:
        """Per-project coach bookkeeping: state revision, per-stage version and digest."""
        return f"{self.namespace}:coachmeta:{project_id}"
