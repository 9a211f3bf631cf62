"""Pure parts of the ops tools: reason filters, records, redrive fields, token bucket, tallies."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from services.ops.logic import (
    UNREADABLE,
    StatsTally,
    TokenBucket,
    entry_matches,
    errors_of,
    hash_tag,
    line_of,
    line_of_record,
    matches_reason,
    record_of,
    redrive_fields,
    window,
)
from services.ops.models import DeadLetterFilter
from services.ops.payload import encode_name
from shared.error_codes import code_family
from shared.wire import DATA_FIELD, ORIGIN_ID_FIELD, REDRIVEN_FROM_FIELD, entry_time
from tests.unit.ops.builders import brewslm_body, dead_fields

# --- reason codes ---------------------------------------------------------------------------


def test_code_family_is_the_part_before_the_colon() -> None:
    assert code_family("invalid_reason_code:foo") == "invalid_reason_code"
    assert code_family("malformed_json") == "malformed_json"
    assert code_family("a:b:c") == "a"


@pytest.mark.parametrize(
    ("errors", "reasons", "expected"),
    [
        (["invalid_reason_code:foo"], ["invalid_reason_code"], True),
        (["invalid_reason_code:foo"], ["invalid_reason_code:foo"], True),
        (["invalid_reason_code:foo"], ["invalid_reason_code:bar"], False),
        (["invalid_reason_code_x"], ["invalid_reason_code"], False),
        (["invalid_reason"], ["invalid_reason_code"], False),
        (["malformed_json", "missing_reason_code"], ["missing_reason_code"], True),
        (["malformed_json"], ["persist_rejected", "malformed_json"], True),
        (["malformed_json"], [], True),
        ([], ["malformed_json"], False),
    ],
)
def test_a_reason_matches_a_code_or_its_family(
    errors: list[str], reasons: list[str], expected: bool
) -> None:
    assert matches_reason(errors, reasons) is expected


def test_entry_matches_reads_the_raw_errors_field() -> None:
    fields = dead_fields(["invalid_reason_code:foo", "missing_reason_code"])
    assert entry_matches(fields, ["invalid_reason_code"])
    assert entry_matches(fields, ("missing_reason_code",))
    assert entry_matches(fields, [])
    assert not entry_matches(fields, ["malformed_json"])
    assert entry_matches({b"junk": b"1"}, [UNREADABLE])


def test_errors_of_a_foreign_entry_is_unreadable() -> None:
    assert errors_of(dead_fields(["a", "b:c"])) == ["a", "b:c"]
    assert errors_of({b"junk": b"1"}) == [UNREADABLE]
    assert errors_of({b"errors": b"not json"}) == [UNREADABLE]
    assert errors_of({b"errors": b"[1, 2]"}) == [UNREADABLE]
    assert errors_of({b"errors": b"[]"}) == [UNREADABLE]


# --- records --------------------------------------------------------------------------------


def test_record_keeps_every_field_and_utf8_original_as_text() -> None:
    fields = dead_fields(["invalid_reason_code:x"], source_id="1700000000000-3")
    record = record_of("1800000000000-0", fields)
    assert record.readable
    assert record.id == "1800000000000-0"
    assert record.errors == ["invalid_reason_code:x"]
    assert record.original_base64 is False
    assert record.original_bytes() == brewslm_body()
    assert record.original_size == len(brewslm_body())
    assert record.source_id == "1700000000000-3"
    assert record.stage == record.group == "validator"
    assert record.hint["run_id"] == "exp-42"


def test_record_gives_non_utf8_bytes_as_base64_with_a_flag() -> None:
    body = b"\xff\xfe\x00 not text"
    fields = dead_fields(["malformed_json"], body, original_fields={"h": b"\x80", "ok": b"v"})
    record = record_of("1800000000000-0", fields)
    assert record.original_base64 is True
    assert base64.b64decode(record.original) == body
    assert record.original_bytes() == body
    assert record.original_fields == {"h": base64.b64encode(b"\x80").decode(), "ok": "v"}
    assert record.original_fields_base64 == ["h"]
    # JSON-safe: the whole record dumps and loads back.
    assert orjson.loads(record.model_dump_json())["original"] == record.original


def test_record_of_a_foreign_entry_is_shown_not_raised() -> None:
    record = record_of("1800000000000-5", {b"junk": b"\xff", b"original": b"{}"})
    assert record.readable is False
    assert record.errors == [UNREADABLE]
    assert record.original == "{}"
    assert record.original_fields_base64 == ["junk"]
    assert record.dead_at == entry_time("1800000000000-5")


@pytest.mark.parametrize(
    ("raw", "shown", "escaped"),
    [(b"plain", "plain", False), ("é".encode(), "é", False), (b"tr\xffce", "tr\\xffce", True),
     (b"a\\b", "a\\\\b", True), (b"\\xff", "\\\\xff", True),
     (b"\xed\xa0\x80", "\\xed\\xa0\\x80", True)],  # a UTF-8-encoded surrogate is not UTF-8
)  # fmt: skip
def test_a_field_name_is_given_as_it_is_or_escaped_without_loss(
    raw: bytes, shown: str, escaped: bool
) -> None:
    name = raw.decode("utf-8", "surrogateescape")  # as the codec reads a name back
    assert encode_name(name) == (shown, escaped)
    fields = dead_fields(["malformed_json"], original_fields={name: b"v"})
    record = record_of("1800000000000-0", fields)
    assert record.original_fields == {shown: "v"}
    assert record.original_fields_escaped == ([shown] if escaped else [])
    record.model_dump_json().encode("utf-8")  # no lone surrogate left to fail the response


def test_a_foreign_entry_s_field_name_that_is_not_utf8_is_escaped_too() -> None:
    record = record_of("1800000000000-5", {b"j\xffnk": b"v", b"original": b"{}"})
    assert record.readable is False
    assert record.original_fields["j\\xffnk"] == "v"
    assert "j\\xffnk" in record.original_fields_escaped


def test_line_summarises_the_event_from_its_hint() -> None:
    fields = dead_fields(["invalid_reason_code:x"])
    line = line_of("1800000000000-0", fields)
    assert (line.event_kind, line.project_id, line.run_id) == ("training", "7", "exp-42")
    assert line.summary == "loss exploded"
    assert line == line_of_record(record_of("1800000000000-0", fields))


def test_line_of_a_pulse_event_uses_its_type_and_message() -> None:
    body = orjson.dumps({"event_type": "run.failed", "run_id": "r1", "message": "boom"})
    line = line_of("1800000000000-0", dead_fields(["x"], body))
    assert (line.event_kind, line.project_id, line.run_id, line.summary) == (
        "run.failed",
        "",
        "r1",
        "boom",
    )


def test_line_of_an_unreadable_body_falls_back_to_the_rejection_message() -> None:
    line = line_of("1800000000000-0", dead_fields(["malformed_json"], b"{nope"))
    assert line.summary == "malformed_json"
    assert line.event_kind == ""


# --- time windows ---------------------------------------------------------------------------


def test_window_bounds_are_entry_ids_of_now_minus_the_durations() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    ms = int(now.timestamp() * 1000)
    assert window(now, None, None) == ("-", "+")
    low, high = window(now, timedelta(hours=1), timedelta(minutes=1))
    assert low == f"{ms - 3_600_000}-0"
    assert high == f"({ms - 60_000}-0"


def test_filter_description_leaves_out_empty_conditions() -> None:
    flt = DeadLetterFilter(reasons=("malformed_json",), since_s=60.0)
    assert flt.describe() == {"reasons": ["malformed_json"], "since_s": 60.0}
    assert DeadLetterFilter().describe() == {"all": True}  # only --all gets past the guard


# --- redrive fields -------------------------------------------------------------------------


def test_redriven_entry_is_the_original_body_with_its_provenance() -> None:
    fields = dead_fields(["invalid_reason_code:x"], source_id="1700000000000-7")
    out = redrive_fields("1800000000000-1", fields)
    assert out == {
        DATA_FIELD: brewslm_body(),
        REDRIVEN_FROM_FIELD: b"1800000000000-1",
        ORIGIN_ID_FIELD: b"1700000000000-7",
    }


def test_a_second_redrive_keeps_the_first_origin() -> None:
    # The event came back from dead letter A as entry 1750000000000-0, was rejected again, and
    # now dead letter B carries A's provenance among its original fields.
    first = {REDRIVEN_FROM_FIELD.decode(): b"1800000000000-1"}
    first[ORIGIN_ID_FIELD.decode()] = b"1700000000000-7"
    fields = dead_fields(["x"], source_id="1750000000000-0", original_fields=first)
    out = redrive_fields("1900000000000-0", fields)
    assert out[ORIGIN_ID_FIELD] == b"1700000000000-7"
    assert out[REDRIVEN_FROM_FIELD] == b"1900000000000-0"
    assert set(out) == {DATA_FIELD, REDRIVEN_FROM_FIELD, ORIGIN_ID_FIELD}


def test_an_entry_without_body_gets_its_fields_back_under_their_names() -> None:
    fields = dead_fields(["missing_data"], b"", original_fields={"payload": b"\xff", "k": b"v"})
    out = redrive_fields("1800000000000-1", fields)
    assert DATA_FIELD not in out
    assert out[b"payload"] == b"\xff"
    assert out[b"k"] == b"v"
    assert out[REDRIVEN_FROM_FIELD] == b"1800000000000-1"


def test_other_original_fields_are_restored_beside_the_body() -> None:
    fields = dead_fields(["x"], b"{}", original_fields={"trace": b"t-1"})
    out = redrive_fields("1800000000000-1", fields)
    assert out[DATA_FIELD] == b"{}"
    assert out[b"trace"] == b"t-1"


def test_hash_tag_follows_redis_cluster_rules() -> None:
    assert hash_tag("{runbus}:events") == "runbus"
    assert hash_tag("x{runbus}:y{z}") == "runbus"
    assert hash_tag("{}:events") == "{}:events"
    assert hash_tag("plain") == "plain"


# --- token bucket ---------------------------------------------------------------------------


class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


async def test_token_bucket_holds_the_rate_over_time() -> None:
    # Given a bucket of 100/s with bursts of 10, on a simulated clock
    fake = FakeTime()
    bucket = TokenBucket(100, clock=fake.clock, sleep=fake.sleep)
    assert bucket.capacity == 10
    assert bucket.batch == 10
    # When 1000 tokens are taken in batches of its size
    for _ in range(100):
        await bucket.take(bucket.batch)
    # Then it took (1000 - the initial burst) / rate seconds of simulated time, not less
    elapsed = fake.now - 1000.0
    assert elapsed == pytest.approx(9.9, abs=1e-6)


async def test_token_bucket_never_exceeds_rate_times_time_plus_burst() -> None:
    fake = FakeTime()
    bucket = TokenBucket(7, capacity=3, clock=fake.clock, sleep=fake.sleep)
    taken = 0
    for size in [1, 3, 2, 1, 3, 3, 1, 2, 2, 3] * 5:
        await bucket.take(size)
        taken += size
        assert taken <= 7 * (fake.now - 1000.0) + 3 + 1e-9


def test_token_bucket_refills_with_time_and_says_how_long_to_wait() -> None:
    fake = FakeTime()
    bucket = TokenBucket(10, capacity=5, clock=fake.clock, sleep=fake.sleep)
    assert bucket.reserve(5) == 0.0  # the initial burst
    assert bucket.reserve(1) == pytest.approx(0.1)  # in debt by one token
    fake.now += 0.35  # repays the debt and earns 2.5 tokens
    assert bucket.reserve(2) == 0.0
    assert bucket.reserve(1) == pytest.approx(0.05)
    fake.now += 10
    assert bucket.reserve(5) == 0.0  # refilled to capacity, never beyond
    assert bucket.reserve(1) == pytest.approx(0.1)


async def test_token_bucket_waits_once_per_take_even_on_a_coarse_clock() -> None:
    # A take that is a hair short must not spin: one sleep per take, whatever the floats do.
    fake = FakeTime()
    bucket = TokenBucket(3, capacity=1, clock=fake.clock, sleep=fake.sleep)
    for _ in range(30):
        await bucket.take(1)
    assert len(fake.sleeps) == 29
    assert fake.now - 1000.0 == pytest.approx(29 / 3)


def test_token_bucket_refuses_a_rate_that_is_not_positive() -> None:
    with pytest.raises(ValueError):
        TokenBucket(0)
    assert TokenBucket(0.5).batch == 1
    assert TokenBucket(1000).batch == 100


# --- stats ----------------------------------------------------------------------------------


def test_tally_counts_each_letter_once_per_code_and_family() -> None:
    tally = StatsTally()
    tally.add(dead_fields(["invalid_reason_code:a", "invalid_reason_code:b"]))
    tally.add(dead_fields(["invalid_reason_code:a"], stage="coach", source_stream="{n}:valid"))
    tally.add(dead_fields(["malformed_json", "malformed_json"]))
    tally.add({b"junk": b"1"})
    counts = tally.as_dict()
    assert counts["scanned"] == 4
    assert [(c.key, c.count) for c in counts["by_family"]] == [
        ("invalid_reason_code", 2),
        ("malformed_json", 1),
        (UNREADABLE, 1),
    ]
    assert [(c.key, c.count) for c in counts["by_code"]][:1] == [("invalid_reason_code:a", 2)]
    assert {c.key: c.count for c in counts["by_stage"]} == {"validator": 2, "coach": 1, "?": 1}
    assert {c.key: c.count for c in counts["by_source_stream"]} == {
        "{ns}:events": 2,
        "{n}:valid": 1,
        "?": 1,
    }
