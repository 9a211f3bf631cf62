"""The console's filter: the URL it is written as, and the check of each live dead letter.

Given a filter as the page's URL gives it, when a live dead letter arrives (or the filter is
written back into a URL), then it admits exactly what the listing's library call would list
for the same filter at that moment, and the URL round-trips.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.api.errors import ApiError
from services.api.ui.dead_letter_query import DeadLetterQuery, dead_letter_query
from services.ops.logic import ms_of
from services.ops.models import DeadLetterRecord
from shared.errors import InputError
from shared.names import Names

NAMES = Names("q")
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def record(age: timedelta = timedelta(seconds=1), **overrides: Any) -> DeadLetterRecord:
    values: dict[str, Any] = {
        "id": f"{ms_of(NOW - age)}-0", "errors": ["invalid_reason_code:foo"], "message": "m",
        "original": "{}", "original_base64": False, "original_size": 2,
        "source_stream": NAMES.events, "source_id": "1-0", "group": "validator",
        "consumer": "c", "stage": "validator", "delivery_count": 1, "first_seen": NOW,
        "dead_at": NOW, "taxonomy_version": "t", "service_version": "v",
    }  # fmt: skip
    return DeadLetterRecord(**(values | overrides))


def query(**params: Any) -> DeadLetterQuery:
    return dead_letter_query(**params)


@pytest.mark.parametrize(
    ("params", "admitted"),
    [
        ({}, True),
        ({"family": ["invalid_reason_code"]}, True),
        ({"family": ["malformed_json"]}, False),
        ({"code": ["invalid_reason_code:foo"]}, True),
        ({"code": ["invalid_reason_code:bar"]}, False),
        ({"reason": ["invalid_reason_code"]}, True),
        ({"stage": ["validator"]}, True),
        ({"stage": ["persister"]}, False),
        ({"source": ["events"]}, True),
        ({"source": ["valid"]}, False),
        ({"since": "1m"}, True),
        ({"since": "0s"}, False),
        ({"before": "1h"}, False),
        ({"before": "0s"}, True),
    ],
)
def test_a_live_dead_letter_passes_the_filter_the_listing_applies(
    params: dict[str, Any], admitted: bool
) -> None:
    assert query(**params).admits(record(), NAMES, NOW) is admitted


def test_the_age_window_is_the_listings() -> None:
    # younger than 1h: an hour old is in (the listing's low bound is inclusive), older is out
    young = query(since="1h")
    assert young.admits(record(age=timedelta(hours=1)), NAMES, NOW)
    assert not young.admits(record(age=timedelta(hours=1, milliseconds=1)), NAMES, NOW)
    old = query(before="1h")  # older than 1h: exactly an hour is not older
    assert not old.admits(record(age=timedelta(hours=1)), NAMES, NOW)
    assert old.admits(record(age=timedelta(hours=1, milliseconds=1)), NAMES, NOW)


def test_the_filter_round_trips_through_its_url_and_empty_fields_mean_any() -> None:
    given = query(family=["invalid_stage", ""], code=[" "], stage=["coach"], since="15m",
                  before="", reason=["malformed_json", "schema_violation:ts"])  # fmt: skip
    assert given.url_query() == (
        "family=invalid_stage&family=malformed_json&code=schema_violation%3Ats"
        "&stage=coach&since=15m"
    )
    assert given.reasons == ("invalid_stage", "malformed_json", "schema_violation:ts")
    assert query().is_empty() and not given.is_empty()
    assert query().url_query(after="1-0") == "after=1-0"


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"family": ["false"]}, "invalid_reason_filter"),
        ({"code": ["<script>"]}, "invalid_reason_filter"),
        ({"stage": ["nowhere"]}, "invalid_stage_filter"),
        ({"source": ["dead"]}, "invalid_source_filter"),
    ],
)
def test_a_bad_filter_is_refused_with_the_librarys_errors(
    params: dict[str, Any], code: str
) -> None:
    with pytest.raises(InputError) as caught:
        query(**params)
    assert caught.value.code == code


def test_a_bad_duration_is_a_422() -> None:
    with pytest.raises(ApiError) as caught:
        query(since="soon")
    assert (caught.value.status, caught.value.code) == (422, "invalid_parameter")
