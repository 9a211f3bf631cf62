"""The binding of `PIPELINE`'s stages to their code: complete, in order, each to its own stage."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from services.runtime.stages import STAGES, SpecFactory, UnboundStage, checked
from shared.pipeline import PIPELINE
from shared.settings import Settings


def test_every_declared_stage_is_bound_in_start_order() -> None:
    assert tuple(STAGES) == PIPELINE.stage_names


@pytest.mark.parametrize("name", PIPELINE.stage_names)
def test_each_spec_reads_its_declared_stream_as_its_declared_group(name: str) -> None:
    declared, spec = PIPELINE.stage(name), STAGES[name]()
    settings = Settings(namespace="topo", partitions=4)
    assert spec.stage == declared and spec.name == name
    every = tuple(p.stream(declared.reads) for p in settings.names.all_partitions)
    assert spec.streams(settings) == every and len(set(every)) == 4
    assert spec.group == declared.group


def _without(name: str) -> dict[str, SpecFactory]:
    return {stage: spec for stage, spec in STAGES.items() if stage != name}


@pytest.mark.parametrize(
    "bound",
    [
        _without(PIPELINE.stage_names[-1]),  # a declared stage without code
        {**STAGES, "extra": STAGES[PIPELINE.stage_names[0]]},  # code for no declared stage
        dict(reversed(STAGES.items())),  # out of start order
        dict(zip(STAGES, reversed(STAGES.values()), strict=True)),  # crossed
    ],
    ids=["missing", "unknown", "reordered", "crossed"],
)
def test_a_binding_that_differs_from_the_declaration_is_refused(
    bound: Mapping[str, SpecFactory],
) -> None:
    with pytest.raises(UnboundStage):
        checked(bound)


def test_the_binding_is_read_only() -> None:
    with pytest.raises(TypeError):
        STAGES["extra"] = STAGES[PIPELINE.stage_names[0]]  # type: ignore[index]
