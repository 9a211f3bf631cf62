"""Helpers shared by the generators: building suggestions and ordering them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final, Literal

from services.coach.facts import Fact, State, newer
from shared.models import (
    AugmentFromClusterAction,
    NavigateAction,
    RunPlaybookAction,
    Suggestion,
)

Severity = Literal["info", "warning", "critical"]
#: Most severe first.
SEVERITY_RANK: Final[dict[str, int]] = {"critical": 0, "warning": 1, "info": 2}


def _params(params: dict[str, Any]) -> dict[str, Any]:
    # A missing detail is left out rather than sent as null: the UI routes on what is there.
    return {k: v for k, v in params.items() if v is not None}


def navigate(severity: Severity, title: str, body: str, label: str, **params: Any) -> Suggestion:
    """A suggestion whose button routes the UI to ``params['target']``."""
    return Suggestion(
        severity=severity,
        title=title,
        body=body,
        action=NavigateAction(label=label, params=_params(params)),
    )


def playbook(severity: Severity, title: str, body: str, label: str, **params: Any) -> Suggestion:
    """A suggestion whose button triggers the generation playbook ``params['playbook']``."""
    action = RunPlaybookAction(label=label, params=_params(params))
    return Suggestion(severity=severity, title=title, body=body, action=action)


def augment(severity: Severity, title: str, body: str, label: str, **params: Any) -> Suggestion:
    """A suggestion whose button opens failure cluster ``params['cluster_id']`` as data."""
    action = AugmentFromClusterAction(label=label, params=_params(params))
    return Suggestion(severity=severity, title=title, body=body, action=action)


def ordered(suggestions: Iterable[Suggestion]) -> list[Suggestion]:
    """Most severe first; equal severities keep the generator's (rule) order."""
    return sorted(suggestions, key=lambda s: SEVERITY_RANK[s.severity])


def plural(count: int, noun: str) -> str:
    """``1 row``, ``2 rows``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def with_summary(body: str, value: dict[str, Any]) -> str:
    """`body`, followed by the event's own one-line summary when it had one."""
    summary = value.get("summary")
    return f"{body} Last report: “{summary}”." if summary else body


def uncleared(
    state: State, ok_key: str, rules: Iterable[tuple[str, Callable[[Fact], Suggestion]]]
) -> list[Suggestion]:
    """The suggestion of each failure fact that no later success (`ok_key`) has cleared."""
    ok = state.get(ok_key)
    return [
        render(fact)
        for key, render in rules
        if (fact := state.get(key)) is not None and newer(fact, ok)
    ]
