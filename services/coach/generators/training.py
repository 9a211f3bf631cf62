"""Coach stage ``training``: dispatch, preflight and run failures.

Inputs (BrewSLM events of stage ``training``):

- ``training_dispatch_error`` (payload ``backend``), ``training_oom`` (payload ``batch_size``,
  ``model``), ``training_timeout`` (payload ``budget_s``): the latest of each;
- every ``training_runtime_error``, counted once per event id;
- a training success (info event with ``payload.status`` completed): failures older than the
  latest success (by event time) are cleared. ``training_cancelled`` is an operator's choice and
  raises nothing.
"""

from __future__ import annotations

from typing import Final

from services.coach.facts import Fact, Seen, State, after, int_field, text_field
from services.coach.generators.common import Severity, navigate, ordered, uncleared, with_summary
from shared.models import Suggestion

#: Runtime errors since the last success from which they count as repeated (warning) ...
RUNTIME_ERRORS_REPEATED: Final = 2
#: ... and from which they are critical.
RUNTIME_ERRORS_CRITICAL: Final = 3

RUNTIME_PREFIX: Final = "training:runtime:"

#: BrewSLM stages whose events `facts` reads.
EVENT_STAGES: Final = frozenset({"training"})


def facts(seen: Seen) -> list[Fact]:
    """Failure and success facts of one training event."""
    payload = seen.payload
    code = seen.code
    if code == "training_dispatch_error":
        value = seen.ref(backend=text_field(payload, "backend"))
        return [seen.fact("training:dispatch", value)]
    if code == "training_oom":
        batch = int_field(payload, "batch_size")
        value = seen.ref(batch_size=batch, model=text_field(payload, "model"))
        return [seen.fact("training:oom", value)]
    if code == "training_timeout":
        value = seen.ref(budget_s=int_field(payload, "budget_s"))
        return [seen.fact("training:timeout", value)]
    if code == "training_runtime_error":
        return [seen.fact(RUNTIME_PREFIX + seen.event_id, seen.ref())]
    if seen.success:
        return [seen.fact("training:ok", seen.ref())]
    return []


def suggest(state: State) -> list[Suggestion]:
    """Training-stage suggestions, most severe first."""
    found = uncleared(
        state,
        "training:ok",
        [("training:dispatch", _dispatch), ("training:oom", _oom), ("training:timeout", _timeout)],
    )
    errors = after(state, RUNTIME_PREFIX, state.get("training:ok"))
    if len(errors) >= RUNTIME_ERRORS_REPEATED:
        found.append(_repeated(errors))
    return ordered(found)


def _dispatch(fact: Fact) -> Suggestion:
    backend = fact.value.get("backend")
    where = f"the {backend} backend" if backend else "the runtime backend"
    return navigate(
        "critical",
        "Training could not be dispatched",
        with_summary(
            f"The run never started: {where} refused it. Check the runtime settings and "
            "credentials in the preflight checks.",
            fact.value,
        ),
        "Open preflight checks",
        target="training-preflight",
        run_id=fact.value.get("run_id"),
        backend=backend,
    )


def _oom(fact: Fact) -> Suggestion:
    batch = fact.value.get("batch_size")
    hint = (
        f"Halve the batch size (it was {batch}) or enable gradient checkpointing."
        if isinstance(batch, int)
        else "Lower the batch size or enable gradient checkpointing."
    )
    return navigate(
        "critical",
        "Training ran out of GPU memory",
        with_summary(f"The last run stopped with an out-of-memory error. {hint}", fact.value),
        "Adjust training config",
        target="training-config",
        section="batch_size",
        run_id=fact.value.get("run_id"),
    )


def _timeout(fact: Fact) -> Suggestion:
    budget = fact.value.get("budget_s")
    limit = f" of {budget} s" if isinstance(budget, int) else ""
    return navigate(
        "warning",
        "Training hit its time budget",
        with_summary(
            f"The run exceeded its wallclock budget{limit}. Raise the budget, train fewer "
            "steps, or pick a smaller base model.",
            fact.value,
        ),
        "Adjust the budget",
        target="training-config",
        section="budget",
        run_id=fact.value.get("run_id"),
    )


def _repeated(errors: list[Fact]) -> Suggestion:
    count = len(errors)
    severity: Severity = "critical" if count >= RUNTIME_ERRORS_CRITICAL else "warning"
    last = errors[-1]
    return navigate(
        severity,
        f"Training failed {count} times in a row",
        with_summary(
            "Runs keep failing inside the training loop since the last successful run. "
            "Retrying will not help: inspect the latest run's logs.",
            last.value,
        ),
        "Inspect the latest run",
        target="training-runs",
        run_id=last.value.get("run_id"),
    )
