"""Rendering of ops results: one-line dead letters, payload pretty-printing, tables."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import orjson
import pytest
from rich.console import Console, RenderableType

from services.ops.logic import line_of, record_of
from services.ops.models import (
    AuditRecord,
    BusStatus,
    ConsumerStatus,
    Count,
    DeadLetterStats,
    GroupStatus,
    StreamStatus,
)
from services.ops.render import (
    HEX_LIMIT,
    audit_text,
    hexdump,
    json_line,
    line_text,
    pretty_original,
    record_view,
    stats_view,
    status_view,
)
from shared.wire import FASTSTREAM_MAGIC
from tests.unit.ops.builders import brewslm_body, dead_fields


def plain(renderable: RenderableType) -> str:
    out = io.StringIO()
    Console(width=200, color_system=None, file=out).print(renderable)
    return out.getvalue()


def test_a_dead_letter_line_has_time_id_codes_stage_type_location_and_summary() -> None:
    fields = dead_fields(["invalid_reason_code:train_gpu_on_fire", "missing_reason_code"])
    text = line_text(line_of("1735689600000-0", fields)).plain
    assert text == (
        "2025-01-01 00:00:00 1735689600000-0 "
        "invalid_reason_code:train_gpu_on_fire,missing_reason_code "
        "validator/training p7/exp-42 loss exploded"
    )


def test_a_dead_letter_line_stays_one_line() -> None:
    body = orjson.dumps({"run_id": "r", "summary": "two\nlines\tand " + "x" * 500})
    text = line_text(line_of("1735689600000-0", dead_fields(["x"], body))).plain
    assert "\n" not in text
    assert "two lines and x" in text
    assert len(text) < 300


def test_json_is_pretty_printed() -> None:
    kind, text = pretty_original(b'{"a":1,"b":[2]}')
    assert kind == "json"
    assert text == '{\n  "a": 1,\n  "b": [\n    2\n  ]\n}'


def test_faststream_binary_is_unwrapped_then_pretty_printed() -> None:
    body = b'{"k":"v"}'
    header = FASTSTREAM_MAGIC + (1).to_bytes(2, "big") + (18).to_bytes(4, "big")
    data = header + (18).to_bytes(4, "big") + body
    kind, text = pretty_original(data)
    assert kind == "json (faststream binary)"
    assert text == '{\n  "k": "v"\n}'


def test_text_that_is_not_json_shows_control_characters() -> None:
    assert pretty_original(b"{oops\x07") == ("text", "'{oops\\x07'")
    assert pretty_original(b"") == ("empty", "")


def test_binary_is_a_hexdump_cut_at_the_limit() -> None:
    kind, text = pretty_original(b"\xff\x00ab" * 5)
    assert kind == "binary"
    assert text.splitlines()[0] == (
        "00000000  ff 00 61 62 ff 00 61 62 ff 00 61 62 ff 00 61 62  ..ab..ab..ab..ab"
    )
    huge = hexdump(b"\xff" * (HEX_LIMIT + 10))
    assert huge.endswith("... 10 more bytes not shown (use --json for all)")
    assert len(huge.splitlines()) == HEX_LIMIT // 16 + 1


def test_show_view_has_every_field_and_the_pretty_payload() -> None:
    fields = dead_fields(["invalid_reason_code:x"], original_fields={"raw": b"\xfe"})
    text = plain(record_view(record_of("1735689600000-0", fields)))
    for expected in (
        "1735689600000-0",
        "invalid_reason_code:x",
        "validator (group validator, consumer validator-host-0)",
        "{ns}:events 1700000000000-0",
        "delivery_count    1",
        "tx-test",
        "orig:raw          b'\\xfe'",
        f"original ({len(brewslm_body())} bytes, json)",
        '  "reason_code": "train_gpu_on_fire",',
    ):
        assert expected in text


def test_stats_view_shows_counts_and_ages() -> None:
    stats = DeadLetterStats(
        stream="{ns}:dead",
        length=3,
        scanned=3,
        by_family=[Count(key="invalid_reason_code", count=2)],
        by_code=[Count(key="invalid_reason_code:a", count=2)],
        by_stage=[Count(key="validator", count=3)],
        by_source_stream=[Count(key="{ns}:events", count=3)],
        oldest_id="1-0",
        oldest_age_s=7200.0,
        newest_id="2-0",
        newest_age_s=5.0,
        elapsed_s=0.01,
    )
    text = plain(stats_view(stats))
    assert "{ns}:dead: 3 dead letters, oldest 2h00m ago, newest 5s ago" in text
    assert "invalid_reason_code:a" in text
    assert "{ns}:events" in text


def test_status_view_shows_absent_streams_and_groups() -> None:
    group = GroupStatus(
        name="validator",
        exists=True,
        expected=True,
        consumers=[ConsumerStatus(name="v-1", pending=2, idle_ms=65_000)],
        pending=2,
        lag=5,
        last_delivered_id="9-0",
        entries_read=9,
        oldest_pending_id="8-0",
        oldest_pending_age_s=90.0,
    )
    status = BusStatus(
        namespace="ns",
        at=datetime(2025, 1, 1, tzinfo=UTC),
        streams=[
            StreamStatus(role="events", name="{ns}:events", exists=True, length=9, groups=[group]),
            StreamStatus(
                role="valid",
                name="{ns}:valid",
                exists=False,
                groups=[GroupStatus(name="persister", exists=False, expected=True)],
            ),
            StreamStatus(role="dead", name="{ns}:dead", exists=False),
        ],
        dead_letters=0,
    )
    lines = plain(status_view(status)).splitlines()
    assert any("valid" in row and "absent" in row for row in lines)
    assert any("valid/persister" in row and "absent" in row for row in lines)
    row = next(row for row in lines if "events/validator " in row)
    cells = [cell.strip() for cell in row.split("│")[2:9]]
    assert cells == ["5", "-", "2", "1m30s", "9-0", "9", "1"]
    assert any("events/validator/v-1" in row and "1m05s" in row for row in lines)
    assert lines[-2:] == ["dead letters: 0", "dead-letter retention: no sweep reported yet"]


def test_an_audit_record_is_one_line() -> None:
    record = AuditRecord(
        id="5-0",
        action="redrive",
        operator="alice",
        at=datetime(2025, 1, 1, tzinfo=UTC),
        filter={"reasons": ["x"]},
        matched=3,
        count=2,
        target="{ns}:events",
        dry_run=False,
    )
    assert audit_text(record).plain == (
        '2025-01-01 00:00:00 5-0 redrive by alice: 2 of 3 to {ns}:events filter {"reasons":["x"]}'
    )


def test_json_line_is_one_line_of_the_model() -> None:
    record = record_of("1735689600000-0", dead_fields(["x"], b"a\nb"))
    line = json_line(record)
    assert "\n" not in line
    assert orjson.loads(line)["original"] == "a\nb"


def _aged(age_s: float) -> BusStatus:
    consumer = ConsumerStatus(name="validator-vm-0", pending=0, idle_ms=int(age_s * 1000))
    group = GroupStatus(name="validator", exists=True, expected=True, consumers=[consumer])
    stream = StreamStatus(
        role="events", name="{ns}:events", exists=True, length=1,
        first_age_s=age_s, last_age_s=age_s, groups=[group],
    )  # fmt: skip
    return BusStatus(
        namespace="ns", at=datetime(2025, 1, 1, tzinfo=UTC), streams=[stream], dead_letters=0
    )


@pytest.mark.parametrize("age_s", [0.0, 0.816, 42.0, 3599.0, 86_399.0, 99 * 86_400.0])
def test_status_tables_keep_their_width_whatever_the_ages(age_s: float) -> None:
    # given the same bus seen with ages of every format (0ms, 816ms, 42s, 59m59s, 23h59m, 99d00h)
    widths = [len(line) for line in plain(status_view(_aged(1.0))).splitlines()]
    # then every line is as wide as with an age of 1s: the table does not jump
    assert [len(line) for line in plain(status_view(_aged(age_s))).splitlines()] == widths
