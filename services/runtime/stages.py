"""Each stage of `shared.pipeline.PIPELINE`, bound to the code that runs it.

The one place that knows which package implements which stage: ``runbus run <stage>`` builds
its app from the spec bound here. The binding is checked when this module is imported: a stage
declared without its code, or code bound to no declared stage, fails at once, loudly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from services.coach import app as coach
from services.persister import app as persister
from services.validator import app as validator
from shared.pipeline import PIPELINE
from shared.service import WorkerSpec

#: Builds one stage's spec (its `PIPELINE` entry, and its handler).
SpecFactory = Callable[[], WorkerSpec]


class UnboundStage(LookupError):
    """The binding's stages are not `PIPELINE`'s (one missing, unknown or out of order)."""


def checked(bound: Mapping[str, SpecFactory]) -> Mapping[str, SpecFactory]:
    """`bound`, read-only, if its stages are exactly `PIPELINE`'s in start order.

    Each factory must also build the spec of the stage it is bound to (building one opens
    nothing: resources open when the worker starts).
    """
    if tuple(bound) != PIPELINE.stage_names:
        raise UnboundStage(
            f"stages bound to code {tuple(bound)} differ from PIPELINE's {PIPELINE.stage_names}"
        )
    crossed = {name: spec().name for name, spec in bound.items() if spec().name != name}
    if crossed:
        raise UnboundStage(f"stage bound to another stage's code: {crossed}")
    return MappingProxyType(dict(bound))


#: Stage name -> the factory of its `WorkerSpec`, in start order.
STAGES: Mapping[str, SpecFactory] = checked(
    {"validator": validator.spec, "persister": persister.spec, "coach": coach.spec}
)
