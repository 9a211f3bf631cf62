"""Stories: every entry on the incoming stream ends on valid or dead, exactly once."""

from __future__ import annotations

import asyncio

import pytest
import redis
from faststream.redis import RedisBroker
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from shared.settings import Settings
from shared.taxonomy import CODE_REQUIRED_SEVERITIES, SEED_TAXONOMY, STAGES
from shared.wire import ORIGIN_ID_FIELD, REDRIVEN_FROM_FIELD
from tests.conftest import REDIS_URL
from tests.integration.validator.helpers import dumps, good_event, outcome, validate_all, xadd_raw

pytestmark = pytest.mark.integration


def _taxonomy_corpus() -> list[dict[str, object]]:
    events: list[dict[str, object]] = []
    for code in SEED_TAXONOMY.reason_codes.values():
        severity = "info" if code.info_only else "error"
        events.append(good_event(stage=code.stage, severity=severity, reason_code=code.code))
    for stage in STAGES:
        events += [good_event(stage=stage, severity=s) for s in ("info", "warning")]
    for event_type, severity in SEED_TAXONOMY.pulse_types.items():
        events.append(
            {"run_id": "r-1", "event_type": event_type, "severity": severity,
             "message": "m", "created_at": "2026-05-01T12:00:00Z"}
        )  # fmt: skip
    return events


def test_every_taxonomy_entry_is_accepted(sync_client: redis.Redis, settings: Settings) -> None:
    # given every reason code in its own stage, every stage without a code, every Pulse type
    corpus = _taxonomy_corpus()
    ids = xadd_raw(sync_client, settings.names.events, [dumps(e) for e in corpus])
    # when the validator runs
    validate_all(sync_client, settings, len(ids))
    # then all of them are on the valid stream, stamped with the taxonomy version
    valid, dead = outcome(sync_client, settings)
    assert not dead, [d.errors for d in dead.values()]
    assert set(valid) == set(ids)
    assert {v.taxonomy_version for v in valid.values()} == {settings.taxonomy.version}
    assert all(v.event["event_id"] == f"evt-{v.source_id}" for v in valid.values())


ERROR_CASES: dict[str, bytes] = {
    "invalid_stage:nope": dumps(good_event(stage="nope")),
    "invalid_severity:fatal": dumps(good_event(severity="fatal")),
    "missing_reason_code": dumps(good_event(severity="error")),
    "invalid_reason_code:made_up": dumps(good_event(severity="error", reason_code="made_up")),
    "reason_code_stage_mismatch:eval_runtime_error": dumps(
        good_event(severity="error", reason_code="eval_runtime_error")
    ),
    "reason_code_severity_mismatch:dataset_import_run": dumps(
        good_event(stage="ingestion", severity="error", reason_code="dataset_import_run")
    ),
    "invalid_event_type:run.exploded": dumps(
        {"run_id": "r", "event_type": "run.exploded", "severity": "error", "created_at": 0}
    ),
    "severity_mismatch:run.failed": dumps(
        {"run_id": "r", "event_type": "run.failed", "severity": "info", "created_at": 0}
    ),
    "malformed_json": b'{"project_id": 1, "run_id": ',
    "schema_violation:project_id": dumps(good_event(project_id="seven")),
    "schema_violation:ts": dumps(good_event(ts="3000-01-01T00:00:00Z")),
    "payload_too_large": dumps(good_event(payload={"blob": "x" * 70_000})),
    "unknown_dialect": dumps({"hello": "world"}),
}


def test_each_error_code_is_dead_lettered_with_original_bytes(
    sync_client: redis.Redis, settings: Settings
) -> None:
    # given one entry per error code of the contract, plus non-UTF-8 bytes
    cases = {**ERROR_CASES, "malformed_json#utf8": b"\xff\xfe{not utf8"}
    ids = xadd_raw(sync_client, settings.names.events, cases.values())
    # when the validator runs
    validate_all(sync_client, settings, len(ids))
    # then each is on the dead-letter stream with its code and its bytes unchanged
    valid, dead = outcome(sync_client, settings)
    assert not valid
    for (code, body), entry_id in zip(cases.items(), ids, strict=True):
        letter = dead[entry_id]
        assert code.split("#")[0] in letter.errors, (code, letter.errors)
        assert letter.original == body
        assert letter.stage == "validator" and letter.group == "validator"
        assert letter.delivery_count == 1 and letter.message
        assert letter.taxonomy_version == settings.taxonomy.version


def test_entry_without_data_field_keeps_its_fields(
    sync_client: redis.Redis, settings: Settings
) -> None:
    # given an entry someone added with their own field names
    entry_id = sync_client.xadd(settings.names.events, {"payload": b"\x00\x01", "k": "v"}).decode()
    validate_all(sync_client, settings, 1)
    _, dead = outcome(sync_client, settings)
    # then the dead letter says why and keeps every original field
    assert dead[entry_id].errors == ["schema_violation:__data__"]
    assert dead[entry_id].original_fields == {"payload": b"\x00\x01", "k": b"v"}


def test_faststream_publisher_output_is_accepted(
    sync_client: redis.Redis, settings: Settings
) -> None:
    # given an event published with FastStream's own publisher (its binary format)
    async def publish() -> None:
        async with RedisBroker(REDIS_URL) as broker:
            await broker.publish(good_event(event_id="fs-1"), stream=settings.names.events)

    asyncio.run(publish())
    # when validated, then it is accepted with its id
    validate_all(sync_client, settings, 1)
    valid, dead = outcome(sync_client, settings)
    assert not dead and [v.event_id for v in valid.values()] == ["fs-1"]


def test_redriven_event_keeps_its_derived_id(sync_client: redis.Redis, settings: Settings) -> None:
    # given an event without id that comes back through a redrive of its first entry
    first = xadd_raw(sync_client, settings.names.events, [dumps(good_event())])[0]
    sync_client.xadd(
        settings.names.events,
        {b"__data__": dumps(good_event()), REDRIVEN_FROM_FIELD: b"1-0", ORIGIN_ID_FIELD: first},
    )
    validate_all(sync_client, settings, 2)
    valid, _ = outcome(sync_client, settings)
    # then both deliveries map to the same event id (the history stores it once)
    assert {v.event_id for v in valid.values()} == {f"evt-{first}"}


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
_mutated = st.builds(
    lambda base, key, value: dumps({**base, key: value}),
    st.sampled_from([good_event(), good_event(severity="error", reason_code="training_oom")]),
    st.sampled_from(["stage", "severity", "reason_code", "ts", "project_id", "payload", "x"]),
    _json,
)
_entries = st.one_of(
    st.binary(max_size=300),
    _json.map(dumps),
    _mutated,
    st.integers(1, 40).map(lambda depth: b"[" * depth * 40 + b"]" * depth * 40),
    st.integers(65_000, 70_000).map(lambda n: dumps(good_event(payload={"s": "x" * n}))),
    st.just(dumps(good_event())),
)


@hsettings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
@given(bodies=st.lists(_entries, min_size=300, max_size=800))
def test_fuzz_every_entry_accounted_for_exactly_once(bodies: list[bytes]) -> None:
    # given thousands of random, malformed, oversized and deeply nested entries
    import uuid

    settings = Settings(redis_url=REDIS_URL, namespace=f"fz{uuid.uuid4().hex[:8]}", block_ms=50)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        ids = xadd_raw(client, settings.names.events, bodies)
        # when the validator runs, then it never stops and routes each entry exactly once
        validate_all(client, settings, len(ids))
        valid, dead = outcome(client, settings)
        assert set(valid) | set(dead) == set(ids)
        assert all(letter.errors for letter in dead.values())
        assert client.xpending(settings.names.events, "validator")["pending"] == 0
    finally:
        keys = list(client.scan_iter(match=f"{{{settings.namespace}}}:*"))
        if keys:
            client.delete(*keys)
        client.close()


def test_cross_stage_policy_accept(sync_client: redis.Redis, settings: Settings) -> None:
    # given the documented policy switched to accept codes of other stages
    lenient = settings.model_copy(update={"cross_stage_reason_codes": "accept"})
    body = ERROR_CASES["reason_code_stage_mismatch:eval_runtime_error"]
    xadd_raw(sync_client, settings.names.events, [body])
    validate_all(sync_client, lenient, 1)
    valid, dead = outcome(sync_client, settings)
    assert len(valid) == 1 and not dead
    assert settings.cross_stage_reason_codes == "reject"


def test_catch_all_system_codes_pass_in_any_stage(
    sync_client: redis.Redis, settings: Settings
) -> None:
    body = dumps(good_event(severity="critical", reason_code="system_db_error"))
    xadd_raw(sync_client, settings.names.events, [body])
    validate_all(sync_client, settings, 1)
    valid, dead = outcome(sync_client, settings)
    assert len(valid) == 1 and not dead
    assert "error" in CODE_REQUIRED_SEVERITIES
