"""Pure decisions of the coach: events -> facts -> suggestions, and how a batch is planned.

Nothing here does I/O. The worker (`services.coach.handler`) and the rebuild
(`services.coach.rebuild`) both go through `facts_from_event`, `fold` and `suggest`, which is
why they agree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import ModuleType
from typing import Annotated, Final, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from services.coach.facts import Fact, Seen, State, merge
from services.coach.generators import cleaning, data, gold_set, training
from services.coach.generators import eval as eval_
from shared.models import COACH_STAGES, Event, PulseEvent, RunEvent, Suggestion, ValidEnvelope
from shared.wire import entry_id_key

MALFORMED: Final = "coach_malformed_envelope"
#: BrewSLM stages whose events the coach reads; the others (export, deployment, autopilot,
#: system) and every Pulse event produce no facts.
COACHED_STAGES: Final[frozenset[str]] = frozenset(
    {"ingestion", "cleaning", "adapter", "training", "eval"}
)
#: One module per coach stage: ``facts(seen)`` and ``suggest(state)``.
GENERATORS: Final[dict[str, ModuleType]] = {
    "data": data,
    "cleaning": cleaning,
    "gold_set": gold_set,
    "training": training,
    "eval": eval_,
}
#: Coach stages a fact key touches, by the key's first segment.
_STAGES_BY_PREFIX: Final[dict[str, tuple[str, ...]]] = {
    "project": ("data", "gold_set"),
    **{stage: (stage,) for stage in COACH_STAGES},
}
_EXTRACTORS: Final[tuple[Callable[[Seen], list[Fact]], ...]] = (
    data.facts,
    cleaning.facts,
    gold_set.facts,
    training.facts,
    eval_.facts,
)


def facts_from_event(event: Event, event_id: str) -> list[Fact]:
    """Every fact one accepted event contributes (none for Pulse and uncoached stages)."""
    if isinstance(event, PulseEvent) or event.stage not in COACHED_STAGES:
        return []
    seen = Seen.of(event, event_id)
    found = [seen.fact("project:active")]
    for extract in _EXTRACTORS:
        found += extract(seen)
    return found


def event_of(envelope: ValidEnvelope) -> Event:
    """The event inside an envelope (raises ValidationError if it is not one)."""
    doc = envelope.event
    if envelope.dialect == "pulse":
        return PulseEvent.model_validate(doc)
    return RunEvent.model_validate(doc)


def facts_from_envelope(envelope: ValidEnvelope) -> list[Fact]:
    """Facts of the event an envelope carries."""
    return facts_from_event(event_of(envelope), envelope.event_id)


def stages_of(fact_key: str) -> tuple[str, ...]:
    """Coach stages whose suggestions read the fact under this key."""
    return _STAGES_BY_PREFIX.get(fact_key.partition(":")[0], ())


def touched_stages(facts: Iterable[Fact]) -> set[str]:
    """Coach stages some of these facts touch."""
    return {stage for fact in facts for stage in stages_of(fact.key)}


def suggest(stage: str, state: State) -> list[Suggestion]:
    """The suggestions of one coach stage for a project state (generators are read-only)."""
    result: list[Suggestion] = GENERATORS[stage].suggest(state)
    return result


def canonical(suggestions: Sequence[Suggestion]) -> bytes:
    """Canonical JSON of a suggestion list: equal lists give equal bytes."""
    return orjson.dumps(
        [s.model_dump(mode="json") for s in suggestions], option=orjson.OPT_SORT_KEYS
    )


def digest(suggestions: Sequence[Suggestion]) -> str:
    """A short fingerprint of a suggestion list (what decides "changed")."""
    return hashlib.sha256(canonical(suggestions)).hexdigest()[:32]


# --- planning a batch -----------------------------------------------------------------------


@dataclass
class ProjectUpdate:
    """What one batch does to one project: facts to merge and stages to recompute."""

    facts: dict[str, Fact] = field(default_factory=dict)
    """The batch's facts, already merged among themselves (one per key)."""
    stages: set[str] = field(default_factory=set)
    """Coach stages the batch's events touched."""
    source_id: str | None = None
    """Highest valid-stream entry id of the batch that touched the project."""


@dataclass
class BatchPlan:
    """The pure part of handling a batch."""

    projects: dict[int, ProjectUpdate] = field(default_factory=dict)
    """Per project, what to merge and recompute."""
    malformed: list[tuple[str, str]] = field(default_factory=list)
    """(entry id, why) of entries that are not a valid envelope."""
    handled: list[str] = field(default_factory=list)
    """Entry ids to acknowledge once the cache is written."""

    def add(self, entry_id: str, project_id: int, facts: list[Fact]) -> None:
        """Fold one event's facts into its project's update."""
        update = self.projects.setdefault(project_id, ProjectUpdate())
        merge(update.facts, facts)
        update.stages |= touched_stages(facts)
        if update.source_id is None or entry_id_key(entry_id) > entry_id_key(update.source_id):
            update.source_id = entry_id


class _EnvelopeOf(BaseModel):
    """`ValidEnvelope`'s fields, its event validated as the dialect's model in the same pass."""

    model_config = ConfigDict(frozen=True)

    event_id: str = Field(description="The event's id (given or derived).")
    taxonomy_version: str = Field(description="Taxonomy version the event was checked against.")
    accepted_at: datetime = Field(description="When the validator accepted it.")
    source_id: str = Field(description="Entry id on the incoming stream.")


class _BrewslmEnvelope(_EnvelopeOf):
    """A valid-stream envelope of a BrewSLM event."""

    dialect: Literal["brewslm"] = Field(description="Always 'brewslm'.")
    event: RunEvent = Field(description="The event.")


class _PulseEnvelope(_EnvelopeOf):
    """A valid-stream envelope of a Pulse event."""

    dialect: Literal["pulse"] = Field(description="Always 'pulse'.")
    event: PulseEvent = Field(description="The event.")


#: One pydantic pass from JSON to the typed event: what ``parse_envelope`` then `event_of`
#: accept, without building the event's dict and validating it a second time.
_TYPED_ENVELOPE: Final[TypeAdapter[_BrewslmEnvelope | _PulseEnvelope]] = TypeAdapter(
    Annotated[_BrewslmEnvelope | _PulseEnvelope, Field(discriminator="dialect")]
)


def plan_batch(entries: Iterable[tuple[str, bytes | None]]) -> BatchPlan:
    """Parse a batch of valid-stream entries and group their facts by project."""
    plan = BatchPlan()
    for entry_id, body in entries:
        try:
            if body is None:
                raise ValueError("the entry has no __data__ field")
            envelope = _TYPED_ENVELOPE.validate_json(body)
        except (ValueError, ValidationError) as exc:
            plan.malformed.append((entry_id, f"not a valid-stream envelope: {exc}"[:500]))
            continue
        plan.handled.append(entry_id)
        event = envelope.event
        facts = facts_from_event(event, envelope.event_id)
        if facts and event.project_id is not None:
            plan.add(entry_id, event.project_id, facts)
    return plan
