"""Pure pieces of the API: ETag matching, the metrics exposition, the AsyncAPI document."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.api.asyncapi import asyncapi_document
from services.api.metrics import Snapshot, StreamInfo, render
from services.api.routes.coach import etag_matches, project_etag
from shared.metrics import LATENCY_BUCKETS, StageMetrics, bucket_of, parse_stage_metrics
from shared.settings import Settings


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (None, False),
        ("", False),
        ('"4"', True),
        ('W/"4"', True),
        ('"3", "4"', True),
        ('"40"', False),
        ("*", True),
        ("4", False),
    ],
)
def test_if_none_match(header: str | None, matches: bool) -> None:
    assert etag_matches(header, '"4"') is matches


def test_project_etag_lists_every_stage_version() -> None:
    assert project_etag({"eval": 9, "data": 2}) == '"2-0-0-0-9"'


def test_stage_hash_decoding_and_cumulative_buckets() -> None:
    raw = {b"batches": b"3", b"entries": b"1200", b"seconds_sum": b"0.75",
           b"le:0.01": b"1", b"le:0.5": b"2", b"n:accepted": b"1100",
           b"reason:invalid_stage": b"7", b"junk": b"x"}  # fmt: skip
    stage = parse_stage_metrics("validator", raw)
    assert (stage.batches, stage.entries, stage.seconds_sum) == (3, 1200, 0.75)
    assert stage.counters == {"accepted": 1100} and stage.reasons == {"invalid_stage": 7}
    cumulative = dict(stage.cumulative_buckets())
    assert cumulative["0.005"] == 0 and cumulative["0.01"] == 1 and cumulative["+Inf"] == 3
    assert len(cumulative) == len(LATENCY_BUCKETS) + 1
    assert bucket_of(0.0001) == "0.001" and bucket_of(99) == "+Inf"


def test_exposition_is_valid_prometheus_text() -> None:
    snapshot = Snapshot(
        up=True,
        streams=(
            StreamInfo("events", 5, 100, ({"name": b"validator", "pending": 2, "lag": 3,
                                           "consumers": 1},)),
            StreamInfo("valid", 0, 90, ({"name": b"persister", "pending": 0, "lag": None,
                                          "consumers": 2},)),
            StreamInfo("dead", 10, 10),
        ),
        stages=(StageMetrics("validator", 2, 100, 0.2, {"0.1": 2}, {"accepted": 90},
                             {"invalid_stage": 10}),),
    )  # fmt: skip
    text = render(snapshot).decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("runbus_events_received_total", ())] == 100
    assert samples[("runbus_group_lag", (("group", "validator"), ("stream", "events")))] == 3
    # a group whose lag Redis cannot tell has no lag sample (rather than a wrong one)
    assert ("runbus_group_lag", (("group", "persister"), ("stream", "valid"))) not in samples
    assert samples[("runbus_group_consumers", (("group", "persister"), ("stream", "valid")))] == 2
    bucket = ("runbus_batch_duration_seconds_bucket", (("le", "+Inf"), ("stage", "validator")))
    assert samples[bucket] == 2
    assert samples[("runbus_events_persisted_total", ())] == 0


def test_redis_down_exposes_only_the_up_gauge() -> None:
    text = render(Snapshot(up=False)).decode()
    names = {f.name for f in text_string_to_metric_families(text)}
    assert names == {"runbus_redis_up"}


def test_asyncapi_document_names_this_namespaces_streams() -> None:
    settings = Settings(namespace="demo1", _env_file=None)  # type: ignore[call-arg]
    doc = asyncapi_document(settings)
    assert doc["asyncapi"] == "3.0.0"
    channels = doc["channels"]
    assert channels["validator"]["address"] == "{demo1}:events"
    assert channels["validator"]["bindings"]["redis"]["groupName"] == "validator"
    assert {channels[g]["address"] for g in ("persister", "coach")} == {"{demo1}:valid"}
    assert channels["dead-letters"]["address"] == "{demo1}:dead"
    assert channels["coach-changes"]["address"] == "demo1:coach:changes"
    schemas = doc["components"]["schemas"]
    assert {"RunEvent", "PulseEvent", "ValidEnvelope", "DeadLetter", "CoachChange"} <= set(schemas)
    assert schemas["RunEvent"]["properties"]["reason_code"]["description"]


def test_several_partitions_label_each_stream_and_group_and_sum_the_totals() -> None:
    group = {"name": b"validator", "pending": 1, "lag": 2, "consumers": 1}
    snapshot = Snapshot(
        up=True,
        streams=(StreamInfo("events", 3, 10, (group,), partition=0),
                 StreamInfo("events", 4, 5, (group,), partition=1),
                 StreamInfo("actions", 6, 6, ({"name": b"platform", "pending": 0, "lag": 6,
                                               "consumers": 0},))),
    )  # fmt: skip
    text = render(snapshot).decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("runbus_events_received_total", ())] == 15
    assert samples[("runbus_stream_length", (("partition", "1"), ("stream", "events")))] == 4
    lag = ("runbus_group_lag", (("group", "validator"), ("partition", "0"), ("stream", "events")))
    assert samples[lag] == 2
    # the actions stream is one for the bus: its partition label is empty
    assert samples[("runbus_stream_length", (("partition", ""), ("stream", "actions")))] == 6
    platform = (("group", "platform"), ("partition", ""), ("stream", "actions"))
    assert samples[("runbus_group_lag", platform)] == 6
