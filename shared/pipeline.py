"""The pipeline, declared once: its streams, and each stage with what it reads and writes.

Everything that needs the topology derives it from `PIPELINE`: the stages' workers (stream and
group), the runtime's process list, the container health checks, ``GET /metrics``, trimming
(which groups must have acknowledged an entry), the ACL roles, the bench's services and the
AsyncAPI document. Names are spelled by `shared.names`; the code of each stage lives in its
package under ``services/``, bound to its entry here by `services.runtime.stages`.

Adding a stage is one `Stage` here plus its package (and its binding). A stream that runbus
writes for a consumer outside it (the platform) is an `Outlet`: declared here too, so the
AsyncAPI document and the ACL roles show it, but no stage reads it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.models import ActionRequest, DeadLetter, PulseEvent, RunEvent, ValidEnvelope
from shared.names import (
    ACTIONS_GROUP,
    COACH_GROUP,
    PERSISTER_GROUP,
    VALIDATOR_GROUP,
    Names,
    StreamKind,
)


@dataclass(frozen=True, slots=True)
class Stream:
    """One stream of the pipeline: its role, what one entry carries, who writes it."""

    kind: StreamKind
    title: str = ""  #: Short name in the AsyncAPI document.
    message: Any = None  #: The pydantic model (or union) of one entry's payload.
    description: str = ""

    def key(self, names: Names) -> str:
        """The stream's Redis name under `names`."""
        return names.stream(self.kind)


@dataclass(frozen=True, slots=True)
class Stage:
    """One stage: the stream it consumes as its group, and the streams it moves entries to."""

    name: str  #: Also the service name: ``runbus run <name>``, its consumer names, its metrics.
    reads: StreamKind
    group: str
    writes: tuple[StreamKind, ...]
    description: str = ""


@dataclass(frozen=True, slots=True)
class Outlet:
    """A stream runbus writes for a consumer outside it: one for the whole bus.

    It sits under the namespace's own hash tag (one slot, on a cluster too), whatever the
    partitions. No stage reads it, so nothing trims it by acknowledgement: its writer caps it
    with an approximate MAXLEN.
    """

    title: str  #: Short name in the AsyncAPI document.
    message: Any  #: The pydantic model of one entry's ``__data__``.
    key: Callable[[Names], str]  #: The stream's Redis name under some names.
    writer: str  #: The runbus role (ACL user) that XADDs to it.
    reader: str  #: Who consumes it outside runbus (its ACL user too).
    group: str  #: The consumer group we suggest the reader uses.
    description: str = ""


@dataclass(frozen=True, slots=True)
class Pipeline:
    """The streams, the stages in start order (a stage before those reading its output), and
    the outlets (streams for consumers outside runbus)."""

    streams: tuple[Stream, ...]
    stages: tuple[Stage, ...]
    outlets: tuple[Outlet, ...] = ()

    @property
    def stage_names(self) -> tuple[str, ...]:
        """Every stage's name, in start order."""
        return tuple(s.name for s in self.stages)

    def stage(self, name: str) -> Stage:
        """The stage called `name` (KeyError if none)."""
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(name)

    def stream(self, kind: StreamKind) -> Stream:
        """The declaration of one stream."""
        return next(s for s in self.streams if s.kind is kind)

    def readers(self, kind: StreamKind) -> tuple[Stage, ...]:
        """The stages that consume `kind`, in start order."""
        return tuple(s for s in self.stages if s.reads is kind)

    def groups_of(self, names: Names, stream: str) -> tuple[str, ...]:
        """Groups that must have acknowledged an entry of `stream` (any partition's) to trim it."""
        return tuple(s.group for s in self.stages if stream in names.streams(s.reads))

    def outlets_of(self, role: str) -> tuple[Outlet, ...]:
        """The outlets that `role` writes or reads (its ACL grants on them)."""
        return tuple(o for o in self.outlets if role in (o.writer, o.reader))


PIPELINE = Pipeline(
    streams=(
        Stream(StreamKind.EVENTS, "incoming", RunEvent | PulseEvent,
               "Producers XADD here: field __data__ = the event as UTF-8 JSON."),
        Stream(StreamKind.VALID, "valid", ValidEnvelope,
               "Accepted events, each wrapped with its id, dialect and taxonomy version "
               "(field __data__, JSON)."),
        Stream(StreamKind.DEAD, "dead-letters", DeadLetter, "Dead letters from every stage."),
    ),
    stages=(
        Stage("validator", StreamKind.EVENTS, VALIDATOR_GROUP,
              (StreamKind.VALID, StreamKind.DEAD),
              "Judges each producer event against the taxonomy: valid, or dead-lettered."),
        Stage("persister", StreamKind.VALID, PERSISTER_GROUP, (StreamKind.DEAD,),
              "Appends accepted events to the history (unique on event id)."),
        Stage("coach", StreamKind.VALID, COACH_GROUP, (StreamKind.DEAD,),
              "Folds accepted events into per-project state and suggestions."),
    ),
    outlets=(
        Outlet("actions", ActionRequest, lambda names: names.actions, "api", "platform",
               ACTIONS_GROUP,
               "Action requests: one per click on a coach suggestion's action button, built "
               "by the API from the cached document the user saw (field __data__, JSON). "
               "One stream for the whole bus, capped by RUNBUS_ACTIONS_MAX_LEN (approximate "
               "MAXLEN). The platform consumes it; runbus never reads it as a group."),
    ),
)  # fmt: skip
