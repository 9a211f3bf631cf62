"""Pure decisions of the coach: events -> facts -> suggestions, and how a batch is planned.

Nothing here does I/O. The worker (`services.coach.handler`) and the rebuild
(`services.coach.rebuild`) both go through `facts_from_event`, `fold` and `suggest`, which is
why they agree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Final

import orjson

from services.coach.facts import Fact, Seen, State, merge
from services.coach.generators import cleaning, data, gold_set, training
from services.coach.generators import eval as eval_
from shared.models import (
    COACH_STAGES,
    Event,
    PulseEvent,
    RunEvent,
    Suggestion,
    ValidEnvelope,
    aware_utc,
)
from shared.valid_stream import DecodeError, EventDecoders
from shared.wire import entry_id_key

MALFORMED: Final = "coach_malformed_envelope"
#: One module per coach stage: ``EVENT_STAGES``, ``facts(seen)`` and ``suggest(state)``.
GENERATORS: Final[dict[str, ModuleType]] = {
    "data": data,
    "cleaning": cleaning,
    "gold_set": gold_set,
    "training": training,
    "eval": eval_,
}
#: BrewSLM stages whose events the coach reads (those some generator names); the others
#: (export, deployment, autopilot, system) and every Pulse event produce no facts.
COACHED_STAGES: Final[frozenset[str]] = frozenset().union(
    *(m.EVENT_STAGES for m in GENERATORS.values() if m.EVENT_STAGES is not None)
)
#: Coach stages a fact key touches, by the key's first segment.
_STAGES_BY_PREFIX: Final[dict[str, tuple[str, ...]]] = {
    "project": ("data", "gold_set"),
    **{stage: (stage,) for stage in COACH_STAGES},
}
#: The fact extractors an event of each coached stage goes through, in generator order (a
#: generator whose ``EVENT_STAGES`` is None reads every coached stage).
_EXTRACTORS: Final[dict[str, tuple[Callable[[Seen], list[Fact]], ...]]] = {
    stage: tuple(
        m.facts for m in GENERATORS.values() if m.EVENT_STAGES is None or stage in m.EVENT_STAGES
    )
    for stage in COACHED_STAGES
}


def facts_from_event(event: Event, event_id: str) -> list[Fact]:
    """Every fact one accepted event contributes (none for Pulse and uncoached stages).

    `event` is a model or the valid stream's struct of one (`decode_event`): the same fields.
    """
    if event.dialect != "brewslm":
        return []
    extractors = _EXTRACTORS.get(event.stage)
    if extractors is None:
        return []
    seen = Seen.of(event, event_id)
    found = [seen.fact("project:active")]
    for extract in extractors:
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


def dumped(suggestions: Sequence[Suggestion]) -> list[dict[str, Any]]:
    """A suggestion list in JSON mode (what a document holds, and what its digest reads)."""
    return [s.model_dump(mode="json") for s in suggestions]


def canonical(suggestions: Sequence[Suggestion]) -> bytes:
    """Canonical JSON of a suggestion list: equal lists give equal bytes."""
    return canonical_of(dumped(suggestions))


def canonical_of(docs: list[dict[str, Any]]) -> bytes:
    """`canonical` of a list already `dumped`."""
    return orjson.dumps(docs, option=orjson.OPT_SORT_KEYS)


def digest(suggestions: Sequence[Suggestion]) -> str:
    """A short fingerprint of a suggestion list (what decides "changed")."""
    return digest_of(dumped(suggestions))


def digest_of(docs: list[dict[str, Any]]) -> str:
    """`digest` of a list already `dumped`."""
    return hashlib.sha256(canonical_of(docs)).hexdigest()[:32]


# --- planning a batch -----------------------------------------------------------------------


@dataclass
class ProjectUpdate:
    """What one batch does to one project: facts to merge and stages to recompute."""

    facts: dict[str, Fact] = field(default_factory=dict)
    """The batch's facts, already merged among themselves (one per key)."""
    source_key: tuple[int, int] = (-1, -1)
    """`entry_id_key` of `source_id` (kept so each entry id is parsed once)."""
    source_id: str | None = None
    """Highest valid-stream entry id of the batch that touched the project."""

    @property
    def stages(self) -> set[str]:
        """Coach stages the batch's events touched (a merge keeps every key it was given)."""
        return touched_stages(self.facts.values())


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
        update = self.projects.get(project_id)
        if update is None:
            update = self.projects[project_id] = ProjectUpdate()
        merge(update.facts, facts)
        key = entry_id_key(entry_id)
        if key > update.source_key:
            update.source_key, update.source_id = key, entry_id


#: The coach's view of the valid stream: JSON objects (payload, details) decoded as dicts.
DECODERS: Final = EventDecoders(dict)


def decode_event(body: bytes) -> tuple[str, Any]:
    """The event id and event of a valid-stream body, its time made aware UTC.

    Raises `DecodeError` or ValueError when the body is not an envelope of an event. The
    validator wrote it from an event its models accepted, so this decodes without validating
    again, and reads the same values as `event_of` (the property tests of tests/unit/badinput).
    """
    envelope = DECODERS.envelope.decode(body)
    event = DECODERS.event(envelope.dialect, envelope.event)
    if envelope.dialect == "pulse":
        event.created_at = aware_utc(event.created_at)
    else:
        event.ts = aware_utc(event.ts)
    return envelope.event_id, event


def plan_batch(entries: Iterable[tuple[str, bytes | None]]) -> BatchPlan:
    """Parse a batch of valid-stream entries and group their facts by project."""
    plan = BatchPlan()
    for entry_id, body in entries:
        try:
            if body is None:
                raise ValueError("the entry has no __data__ field")
            event_id, event = decode_event(body)
        except (DecodeError, ValueError) as exc:
            plan.malformed.append((entry_id, f"not a valid-stream envelope: {exc}"[:500]))
            continue
        plan.handled.append(entry_id)
        facts = facts_from_event(event, event_id)
        if facts and event.project_id is not None:
            plan.add(entry_id, event.project_id, facts)
    return plan
