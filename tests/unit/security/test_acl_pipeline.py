"""The stages' ACL users follow the pipeline declaration: the shipped ``users.acl`` gives every
declared stage a user confined to its input stream, its output streams and its metrics hash."""

from __future__ import annotations

import re
from typing import Any

import pytest

from services.security.acl import ROLE_NAMES, STAGE_EXTRAS
from shared.names import COACH_GROUP, PERSISTER_GROUP, Names, StreamKind
from shared.pipeline import PIPELINE, Stage
from shared.settings import REPO_ROOT

SHIPPED = REPO_ROOT / "deploy" / "redis" / "users.acl"
NAMES = Names()


#: What reading a stream's status takes: no entry's content.
STATUS_READS = {"xinfo|stream", "xinfo|groups", "xinfo|consumers", "xlen", "xpending"}


def selectors(user: str) -> list[tuple[set[str], set[str], set[str]]]:
    """(keys, channels, commands) of each selector of `user` in the shipped file."""
    line = next(x for x in SHIPPED.read_text().splitlines() if x.split()[1] == user)
    found = []
    for selector in re.findall(r"\(([^)]*)\)", line):
        tokens = selector.split()
        found.append(
            (
                {t for t in tokens if re.match(r"(%[RW])?~", t)},
                {t[1:] for t in tokens if t.startswith("&")},
                {t[1:] for t in tokens if t.startswith("+")},
            )
        )
    return found


def keys_with(user: str, command: str) -> set[str]:
    """Every key pattern `user` may run `command` on."""
    return {k for keys, _, commands in selectors(user) if command in commands for k in keys}


def streams_of(stage: Stage) -> tuple[str, list[str]]:
    return NAMES.stream(stage.reads), [NAMES.stream(k) for k in stage.writes]


@pytest.mark.parametrize("stage", PIPELINE.stages, ids=PIPELINE.stage_names)
def test_each_stage_consumes_only_its_input_and_writes_only_its_outputs(stage: Stage) -> None:
    source, sinks = streams_of(stage)
    assert keys_with(stage.name, "xreadgroup") == {f"~{source}"}
    assert keys_with(stage.name, "xack") == {f"~{source}"}
    assert keys_with(stage.name, "xadd") == {f"%W~{s}" for s in sinks}
    # The atomic move scripts declare the source and every sink, nothing else of the pipeline
    streams = {f"~{s.key(NAMES)}" for s in PIPELINE.streams}
    assert keys_with(stage.name, "evalsha") & streams == {f"~{k}" for k in (source, *sinks)}


@pytest.mark.parametrize("stage", PIPELINE.stages, ids=PIPELINE.stage_names)
def test_each_stage_counts_only_in_its_own_metrics_hash(stage: Stage) -> None:
    assert keys_with(stage.name, "hincrbyfloat") == {f"~{NAMES.metrics(stage.name)}"}


@pytest.mark.parametrize("stage", PIPELINE.stages, ids=PIPELINE.stage_names)
def test_a_stage_names_nothing_beyond_its_streams_metrics_and_declared_extras(
    stage: Stage,
) -> None:
    source, sinks = streams_of(stage)
    own = {source, *sinks, NAMES.metrics(stage.name)}
    # Only a stage with extras names more: the coach its cache and change channel, the
    # persister (retention) the dead-letter streams and the retention hash
    extras = {
        COACH_GROUP: set(NAMES.coach_patterns),
        PERSISTER_GROUP: {*NAMES.streams(StreamKind.DEAD), NAMES.dead_letter_retention},
    }
    extra = extras.get(stage.group, set())
    channels = {NAMES.coach_changes} if stage.group == COACH_GROUP else set()
    named = {k.split("~", 1)[1] for keys, _, _ in selectors(stage.name) for k in keys}
    assert named == own | extra
    assert {c for _, chans, _ in selectors(stage.name) for c in chans} == channels


def test_extras_belong_to_declared_stages() -> None:
    # A group no stage declares would silently lose its grants
    assert set(STAGE_EXTRAS) <= {s.group for s in PIPELINE.stages}


@pytest.mark.parametrize("outlet", PIPELINE.outlets, ids=[o.title for o in PIPELINE.outlets])
def test_an_outlet_is_written_by_its_writer_and_consumed_by_its_reader_only(outlet: Any) -> None:
    key = outlet.key(NAMES)
    # Its writer appends to it and reads it back, nothing more on it
    assert f"%W~{key}" in keys_with(outlet.writer, "xadd")
    assert f"%R~{key}" in keys_with(outlet.writer, "xrevrange")
    assert not any(key in k for k in keys_with(outlet.writer, "xreadgroup"))
    # Its outside reader consumes it as a group, never trims it, and names no other key
    assert keys_with(outlet.reader, "xreadgroup") == {f"~{key}"}
    assert keys_with(outlet.reader, "xtrim") == set()
    named = {k.split("~", 1)[1] for keys, _, _ in selectors(outlet.reader) for k in keys}
    assert named == {key}
    # And no other role names it but to read its status (`runbus status`: length, lag)
    others = set(ROLE_NAMES) - {outlet.writer, outlet.reader}
    for role in others:
        status = {c for keys, _, cmds in selectors(role) if f"%R~{key}" in keys for c in cmds}
        assert status <= STATUS_READS, (role, status)
        named = [k for keys, _, _ in selectors(role) for k in keys if key in k]
        assert set(named) <= {f"%R~{key}"}, (role, named)
