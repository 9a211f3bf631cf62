"""A project's coach keys share one hash slot; the dashboards' pattern matches documents only."""

from __future__ import annotations

from fnmatch import fnmatchcase

import pytest
from redis.crc import key_slot

from shared.models import COACH_STAGES
from shared.names import Names

NAMES = Names("runbus", partitions=12)


def project_keys(names: Names, project: int) -> list[str]:
    """Every per-project key the coach writes."""
    keys = [names.coach_key(project, stage) for stage in COACH_STAGES]
    return [*keys, names.coach_state(project), names.coach_meta(project)]


@pytest.mark.parametrize("project", [1, 7, 12345])
def test_a_projects_keys_share_its_slot(project: int) -> None:
    slots = {key_slot(key.encode()) for key in project_keys(NAMES, project)}
    assert slots == {key_slot(NAMES.coach_tag(project).encode())}


def test_the_default_layout_is_spelled_as_documented() -> None:
    names = Names()
    assert names.coach_key(7, "training") == "{runbus:coach:7}:doc:training"
    assert names.coach_state(7) == "{runbus:coach:7}:state"
    assert names.coach_meta(7) == "{runbus:coach:7}:meta"
    assert names.coach_projects == "runbus:coach:projects"
    assert names.coach_changes == "runbus:coach:changes"


def test_the_documents_pattern_matches_documents_and_nothing_else() -> None:
    pattern = NAMES.coach_documents_pattern
    assert all(fnmatchcase(NAMES.coach_key(7, s), pattern) for s in COACH_STAGES)
    others = [NAMES.coach_state(7), NAMES.coach_meta(7), NAMES.coach_projects]
    assert not any(fnmatchcase(key, pattern) for key in others)
    assert not fnmatchcase(Names("other").coach_key(7, "data"), pattern)


def test_the_coach_patterns_and_the_namespace_patterns_cover_every_coach_key() -> None:
    keys = [*project_keys(NAMES, 7), NAMES.coach_projects]
    for globs in (NAMES.coach_patterns, NAMES.key_patterns):
        assert all(any(fnmatchcase(k, g) for g in globs) for k in keys)
    assert not any(fnmatchcase(k, g) for k in keys for g in Names("other").coach_patterns)
