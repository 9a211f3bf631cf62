"""Input errors of the ops tools (dead letters), each with its stable code."""

from __future__ import annotations

from shared.errors import InputError


class InvalidStreamId(InputError):
    """Not an entry id Redis can hold (see `services.ops.stream_ids`)."""

    code = "invalid_stream_id"


class RedriveFilterRequired(InputError):
    """A redrive named no filter and did not say it means every dead letter."""

    code = "redrive_filter_required"


class PurgeFilterRequired(InputError):
    """A purge bounded neither the age (before) nor named ids: it never deletes everything."""

    code = "purge_filter_required"


class InvalidReasonFilter(InputError):
    """A reason filter no error code can match (see `services.ops.logic.REASON_FILTER_PATTERN`)."""

    code = "invalid_reason_filter"


class InvalidStageFilter(InputError):
    """A stage filter naming no stage of the pipeline (`shared.pipeline.PIPELINE`)."""

    code = "invalid_stage_filter"


class InvalidSourceFilter(InputError):
    """A source filter naming no stream a stage reads (events, valid)."""

    code = "invalid_source_filter"
