"""Facts and batch planning: order-free, idempotent, exact; malformed entries isolated."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from services.coach import logic
from services.coach.facts import Fact, decode, encode, merge, micros, supersedes
from shared.models import COACH_STAGES
from shared.taxonomy import SEED_TAXONOMY
from shared.wire import parse_envelope
from tests.unit.coach.builders import body, event, pulse, state_of, success
from tests.unit.coach.cases import CASES

P = 7


def _corpus() -> list[object]:
    events: list[object] = []
    for case in CASES:
        events += case.raise_(P) + case.clear(P)
    return events


CORPUS = _corpus()


def _all_suggestions(state: dict[str, Fact]) -> dict[str, bytes]:
    return {stage: logic.canonical(logic.suggest(stage, state)) for stage in COACH_STAGES}


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), dupes=st.integers(0, 20))
def test_any_order_and_any_redelivery_give_the_same_state(seed: int, dupes: int) -> None:
    # given the corpus shuffled, with some events delivered again
    rng = random.Random(seed)
    shuffled = list(CORPUS) + [rng.choice(CORPUS) for _ in range(dupes)]
    rng.shuffle(shuffled)
    # then state and every stage's suggestions equal the in-order fold
    expected = state_of(CORPUS)  # type: ignore[arg-type]
    got = state_of(shuffled)  # type: ignore[arg-type]
    assert got == expected
    assert _all_suggestions(got) == _all_suggestions(expected)


def test_merge_keeps_the_latest_and_ties_break_on_event_id() -> None:
    old = Fact("training:oom", 10, "b")
    assert supersedes(Fact("training:oom", 11, "a"), old)
    assert supersedes(Fact("training:oom", 10, "c"), old)
    assert not supersedes(Fact("training:oom", 10, "a"), old)
    assert not supersedes(Fact("training:oom", 10, "b"), old)  # the same fact again


def test_earliest_keys_keep_the_first() -> None:
    state: dict[str, Fact] = {}
    assert merge(state, [Fact("project:active", 10, "b")]) == {"project:active"}
    assert merge(state, [Fact("project:active", 20, "a")]) == set()
    assert merge(state, [Fact("project:active", 5, "z")]) == {"project:active"}
    assert state["project:active"].ts == 5


def test_micros_is_exact() -> None:
    ts = datetime(2099, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
    assert micros(ts) == 4_102_444_799_999_999
    assert micros(datetime(1970, 1, 1, tzinfo=UTC)) == 0


def test_stored_form_round_trips() -> None:
    fact = Fact("data:import", 1_777_000_000_000_001, "ev-1", {"outcome": "ok", "n": [1, "x"]})
    raw = encode(fact)
    assert orjson.loads(raw) == [1_777_000_000_000_001, "ev-1", {"outcome": "ok", "n": [1, "x"]}]
    assert decode("data:import", raw) == fact


def test_every_coached_event_marks_the_project_active_and_touches_data_and_gold_set() -> None:
    facts = logic.facts_from_event(event("training_oom", t=1), "e1")
    assert {f.key for f in facts} == {"project:active", "training:oom"}
    assert logic.touched_stages(facts) == {"data", "gold_set", "training"}


def test_plan_groups_by_project_and_premerges() -> None:
    a = event("training_oom", t=1, project=1)
    b = event("training_oom", t=2, project=1, run_id="exp-2")
    c = success("eval", t=3, project=2)
    entries = [("5-0", body(a)), ("7-1", body(b)), ("6-0", body(c)), ("8-0", body(pulse()))]
    plan = logic.plan_batch(entries)
    assert plan.handled == ["5-0", "7-1", "6-0", "8-0"]
    assert plan.malformed == []
    assert set(plan.projects) == {1, 2}
    one = plan.projects[1]
    # then the batch's two OOMs became one fact: the later one
    assert one.facts["training:oom"].value["run_id"] == "exp-2"
    assert one.stages == {"data", "gold_set", "training"}
    assert one.source_id == "7-1"


def test_plan_isolates_malformed_entries() -> None:
    good = body(event("training_oom", t=1))
    entries = [
        ("1-0", None),
        ("2-0", b"not json"),
        ("3-0", b'{"event_id": "x"}'),
        ("4-0", orjson.dumps({**orjson.loads(good), "event": {"stage": "training"}})),
        ("5-0", good),
    ]
    plan = logic.plan_batch(entries)
    assert [i for i, _ in plan.malformed] == ["1-0", "2-0", "3-0", "4-0"]
    assert plan.handled == ["5-0"]
    assert set(plan.projects) == {P}


def test_digest_depends_on_content_only() -> None:
    found = logic.suggest("training", state_of([event("training_oom", t=1)]))
    again = logic.suggest("training", state_of([event("training_oom", t=1)]))
    assert logic.digest(found) == logic.digest(again)
    assert logic.digest(found) != logic.digest([])


def test_each_stage_reads_only_the_facts_that_touch_it() -> None:
    # A batch recomputes only the stages its facts touch; that is sound only if no generator
    # reads a fact whose key maps to other stages. So: a stage's suggestions from the full state
    # equal those from the facts that touch it alone.
    raised = [ev for case in CASES for ev in case.raise_(P)]
    for state in (state_of(raised), state_of(CORPUS)):  # type: ignore[arg-type]
        for stage in COACH_STAGES:
            own = {k: f for k, f in state.items() if stage in logic.stages_of(k)}
            assert logic.suggest(stage, own) == logic.suggest(stage, state), stage
    for stage in COACH_STAGES:
        assert logic.suggest(stage, state_of(raised)), f"the raised rules make {stage} speak"


def _two_step_facts(raw: bytes) -> list[Fact] | None:
    """The reference: `parse_envelope`, then the event validated as its dialect's model; its
    facts, or None when either step refuses the body."""
    try:
        envelope = parse_envelope(raw)
        return logic.facts_from_event(logic.event_of(envelope), envelope.event_id)
    except ValueError:
        return None


def _planned(raw: bytes) -> list[Fact] | None:
    """The worker's reading of one body: its facts, or None when it is dead-lettered."""
    plan = logic.plan_batch([("1-0", raw)])
    if plan.malformed:
        return None
    update = plan.projects.get(P)
    return [] if update is None else sorted(update.facts.values(), key=lambda f: f.key)


def _sorted(facts: list[Fact] | None) -> list[Fact] | None:
    return None if facts is None else sorted(facts, key=lambda f: f.key)


def test_plan_accepts_exactly_what_envelope_then_event_validation_accepts() -> None:
    # given envelopes bent in every way the one-pass decode could judge differently
    good = orjson.loads(body(event("training_oom", t=1)))
    ev = good["event"]
    pulse_doc = orjson.loads(body(pulse()))
    variants = [
        good,
        pulse_doc,
        {**good, "dialect": "pulse"},  # a BrewSLM event under the Pulse dialect
        {**pulse_doc, "dialect": "brewslm"},
        {**good, "dialect": "other"},
        {k: v for k, v in good.items() if k != "dialect"},
        {k: v for k, v in good.items() if k != "accepted_at"},
        {**good, "accepted_at": "yesterday"},
        {**good, "event_id": 7},
        {**good, "extra": 1},  # the envelope ignores extra fields
        {**good, "event": {**ev, "project_id": "7"}},
        {**good, "event": {**ev, "project_id": True}},
        {**good, "event": {**ev, "project_id": 7.0}},
        {**good, "event": {**ev, "project_id": -1}},
        {**good, "event": {**ev, "bogus": 1}},  # the event forbids them
        {**good, "event": {k: v for k, v in ev.items() if k != "dialect"}},  # its default
        {**good, "event": {**ev, "ts": "2026-05-01T14:00:00+02:00"}},
        {**good, "event": {**ev, "ts": "2026-05-01T12:00:00"}},  # naive: UTC
        {**good, "event": {**ev, "ts": "2100-01-01T00:00:00Z"}},
        {**good, "event": {**ev, "ts": "1969-12-31T23:59:59Z"}},
        {**good, "event": {**ev, "summary": "x" * 4097}},
        {**good, "event": {**ev, "run_id": ""}},
        {**good, "event": {**ev, "payload": None}},
        {**good, "event": {**ev, "payload": [1]}},
        {**good, "event": [ev]},
        {**pulse_doc, "event": {**pulse_doc["event"], "details": None}},
        {**pulse_doc, "event": {**pulse_doc["event"], "details": "x"}},
        [good],
    ]
    raws = [orjson.dumps(v) for v in variants] + [b"", b"{", b"null"]
    # then each body is refused by both readings, or gives the same facts in both
    for raw in raws:
        assert _planned(raw) == _sorted(_two_step_facts(raw)), raw
    accepted = [raw for raw in raws if _planned(raw) is not None]
    assert len(accepted) == 7  # both dialects, an extra envelope field, default and offset times


def test_times_as_numbers_are_refused() -> None:
    # The one reading that differs: pydantic takes epoch seconds for a time, the decoder only
    # ISO text (which is all the validator writes), so a hand-written number is dead-lettered.
    good = orjson.loads(body(event("training_oom", t=1)))
    for bent in ({**good, "accepted_at": 1_700_000_000},
                 {**good, "event": {**good["event"], "ts": 1_700_000_000}}):  # fmt: skip
        raw = orjson.dumps(bent)
        assert _two_step_facts(raw) is not None
        assert _planned(raw) is None


PAYLOAD_KEYS = [
    "status", "accepted", "rejected", "source", "locator", "format", "extension", "rows",
    "target", "field", "column", "dataset", "dataset_id", "findings", "removed", "cap",
    "review_queue", "backend", "batch_size", "model", "budget_s", "eval_pack", "provider",
    "failure_clusters",
]  # fmt: skip
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=130),
    st.sampled_from(["completed", "Succeeded", "gold_set", "running"]),
)  # fmt: skip
_cluster_keys = st.sampled_from(["id", "cluster_id", "size", "count", "label", "name"])
_values = st.one_of(_scalars, st.lists(st.dictionaries(_cluster_keys, _scalars), max_size=4))
_codes = st.sampled_from(sorted(SEED_TAXONOMY.reason_codes))


@settings(max_examples=300, deadline=None)
@given(
    code=st.one_of(st.none(), _codes),
    stage=st.sampled_from([None, *sorted(logic.COACHED_STAGES), "export"]),
    payload=st.dictionaries(st.sampled_from(PAYLOAD_KEYS), _values, max_size=6),
    t=st.floats(0, 1e6, allow_nan=False),
    summary=st.one_of(st.none(), st.text(max_size=200)),
)
def test_the_decoded_event_gives_the_facts_of_the_validated_one(
    code: str | None, stage: str | None, payload: dict[str, Any], t: float, summary: str | None
) -> None:
    # given an event the validator accepts, in the body it writes
    known = SEED_TAXONOMY.reason_codes.get(code) if code else None
    stage = known.stage if known else stage
    extra = {} if summary is None else {"summary": summary}
    raw = body(event(code, t=t, stage=stage, payload=payload, **extra))
    # then the worker's facts are the facts of the pydantic event
    want = _two_step_facts(raw)
    assert want is not None
    assert _planned(raw) == _sorted(want)
