"""Dead-letter filters as typed, and the one matcher of listings, live tails, redrives and purges.

A filter names reasons (codes or families), rejecting stages, source streams and an age window
(`since` younger than, `before` older than). The checks here are the CLI's and the HTTP API's
alike (each refusal has its stable code, `services.ops.errors`), and `Matcher` is what every
read of the dead-letter streams applies, so a redrive of "what the page shows" moves exactly
what the page lists.

Stages are the pipeline's (`PIPELINE.stage_names`). A source is a stream *role* that a stage
reads (events, valid), never a raw key: it means that role's stream in every partition
(`Names.streams`), since a partitioned bus has one key per partition.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from services.ops.errors import InvalidSourceFilter, InvalidStageFilter, RedriveFilterRequired
from services.ops.logic import check_reason_filters, entry_matches
from services.ops.models import DeadLetterFilter
from services.ops.stream_ids import check_dead_letter_ids
from shared.names import Names, StreamKind
from shared.pipeline import PIPELINE
from shared.wire import DEAD_LETTERS, Fields

#: The stages that can reject an entry: every stage of the pipeline.
STAGE_NAMES: Final = PIPELINE.stage_names
#: The stream roles a dead letter can come from: those some stage reads, in pipeline order.
SOURCE_KINDS: Final = tuple(dict.fromkeys(stage.reads for stage in PIPELINE.stages))


def _shown(value: str) -> str:
    return repr(value if len(value) <= 60 else value[:57] + "...")


def check_stage_filters(stages: Sequence[str]) -> tuple[str, ...]:
    """`stages` when each is a stage of the pipeline; `InvalidStageFilter` for the first not."""
    for stage in stages:
        if stage not in STAGE_NAMES:
            raise InvalidStageFilter(
                f"stage: {_shown(stage)} is not a pipeline stage ({', '.join(STAGE_NAMES)})",
                field="stage",
            )
    return tuple(stages)


def check_source_filters(sources: Sequence[str]) -> tuple[StreamKind, ...]:
    """`sources` as stream roles some stage reads; `InvalidSourceFilter` for the first not one.

    A role, not a key: ``events`` means every partition's incoming stream.
    """
    kinds: list[StreamKind] = []
    allowed = [kind.value for kind in SOURCE_KINDS]
    for source in sources:
        if source not in allowed:
            raise InvalidSourceFilter(
                f"source: {_shown(source)} is not a stream a stage reads ({', '.join(allowed)})",
                field="source",
            )
        kinds.append(StreamKind(source))
    return tuple(kinds)


@dataclass(frozen=True, slots=True)
class Matcher:
    """Whether a dead-letter entry passes a filter's field conditions (the age is the scan's
    XRANGE window, `services.ops.logic.window`). Empty conditions match everything.

    Stages and sources are compared as the raw field bytes: no decoding per entry on a scan.
    """

    reasons: tuple[str, ...] = ()
    stages: frozenset[bytes] = frozenset()
    sources: frozenset[bytes] = frozenset()

    def __call__(self, fields: Fields) -> bool:
        """True when the entry meets every condition."""
        if self.stages and DEAD_LETTERS.raw(fields, "stage") not in self.stages:
            return False
        if self.sources and DEAD_LETTERS.raw(fields, "source_stream") not in self.sources:
            return False
        return entry_matches(fields, self.reasons)


def matcher(
    names: Names,
    *,
    reasons: Sequence[str] = (),
    stages: Sequence[str] = (),
    sources: Sequence[str] = (),
) -> Matcher:
    """The matcher of these conditions, each checked (the refusals of `selection_filter`)."""
    kinds = check_source_filters(sources)
    return Matcher(
        reasons=check_reason_filters(reasons),
        stages=frozenset(stage.encode() for stage in check_stage_filters(stages)),
        sources=frozenset(key.encode() for kind in kinds for key in names.streams(kind)),
    )


def matcher_of(names: Names, flt: DeadLetterFilter) -> Matcher:
    """The matcher of a redrive or purge filter (its ids and ages are the caller's)."""
    return matcher(names, reasons=flt.reasons, stages=flt.stages, sources=flt.sources)


def selection_filter(
    *,
    reasons: Sequence[str] = (),
    stages: Sequence[str] = (),
    sources: Sequence[str] = (),
    ids: Sequence[str] = (),
    since: timedelta | None = None,
    before: timedelta | None = None,
) -> DeadLetterFilter:
    """A filter as typed (CLI options, API parameters or body), every part checked.

    Refusals: `InvalidReasonFilter`, `InvalidStageFilter`, `InvalidSourceFilter`,
    `InvalidStreamId` (ids).
    """
    return DeadLetterFilter(
        reasons=check_reason_filters(reasons),
        stages=check_stage_filters(stages),
        sources=check_source_filters(sources),
        ids=check_dead_letter_ids(tuple(ids)),
        since_s=None if since is None else since.total_seconds(),
        before_s=None if before is None else before.total_seconds(),
    )


def redrive_filter(
    *,
    reasons: Sequence[str] = (),
    stages: Sequence[str] = (),
    sources: Sequence[str] = (),
    ids: Sequence[str] = (),
    since: timedelta | None = None,
    before: timedelta | None = None,
    everything: bool = False,
    archived: bool = False,
) -> DeadLetterFilter:
    """The filter of a redrive as typed (CLI options or API body): the one guard of both.

    Every part is checked (`selection_filter`); a filter without any condition is refused
    (`RedriveFilterRequired`) unless `everything` says that every dead letter is meant.
    `archived` looks in the archive too (a redrive may send from it; a purge never touches it).
    """
    flt = selection_filter(
        reasons=reasons, stages=stages, sources=sources, ids=ids, since=since, before=before
    )
    if flt.is_empty() and not everything:
        raise RedriveFilterRequired(
            "name reasons, stages, sources, ids, since or before (or all, to mean every dead "
            "letter): a redrive never takes everything unasked"
        )
    return flt.model_copy(update={"archived": archived}) if archived else flt
