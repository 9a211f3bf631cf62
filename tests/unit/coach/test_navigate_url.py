"""`navigate_url`: the template filled with URL-quoted values, or no URL at all.

Params are hostile text (the coach's rules read event payloads): each value must land as one
quoted segment, never as URL structure, and anything that is not an absolute http(s) URL is
refused.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.coach.navigate import navigate_url
from shared.models import AugmentFromClusterAction, NavigateAction, RunPlaybookAction

TEMPLATE = "https://platform.example/projects/{project_id}/{target}"


def go(**params: Any) -> NavigateAction:
    return NavigateAction(label="Open", params=params)


def test_fills_project_stage_and_params() -> None:
    template = "https://platform.example/p/{project_id}/{stage}/{target}?tab={tab}"
    url = navigate_url(template, 7, "gold_set", go(target="gold-set", tab="rows"))
    assert url == "https://platform.example/p/7/gold_set/gold-set?tab=rows"


def test_no_template_or_another_kind_gives_no_url() -> None:
    assert navigate_url(None, 7, "data", go(target="x")) is None
    playbook = RunPlaybookAction(label="Run", params={"target": "x"})
    cluster = AugmentFromClusterAction(label="Open", params={"target": "x"})
    assert navigate_url(TEMPLATE, 7, "data", playbook) is None
    assert navigate_url(TEMPLATE, 7, "data", cluster) is None


@pytest.mark.parametrize(
    ("target", "segment"),
    [
        ("javascript:alert(1)", "javascript%3Aalert%281%29"),
        ("../../admin", "..%2F..%2Fadmin"),
        ("a/b?c=d#e", "a%2Fb%3Fc%3Dd%23e"),
        ("\"'><script>", "%22%27%3E%3Cscript%3E"),
        ("évaluation ✓", "%C3%A9valuation%20%E2%9C%93"),
        ("\u202egnp.exe", "%E2%80%AEgnp.exe"),
        ("nul\x00cr\r\nlf", "nul%00cr%0D%0Alf"),
        ("//evil.example", "%2F%2Fevil.example"),
        ("%2e%2e", "%252e%252e"),
        ("{project_id}", "%7Bproject_id%7D"),
    ],
)
def test_hostile_values_stay_one_quoted_segment(target: str, segment: str) -> None:
    url = navigate_url(TEMPLATE, 7, "data", go(target=target))
    assert url == f"https://platform.example/projects/7/{segment}"


@pytest.mark.parametrize("target", [".", "..", ""])
def test_a_dot_segment_or_nothing_is_refused(target: str) -> None:
    # Browsers resolve . and .. (even percent-encoded), and an empty one drops a segment
    assert navigate_url(TEMPLATE, 7, "data", go(target=target)) is None


@pytest.mark.parametrize("target", [None, ["a"], {"a": 1}, "\ud800"])
def test_a_value_with_no_single_text_is_refused(target: Any) -> None:
    assert navigate_url(TEMPLATE, 7, "data", go(target=target)) is None


def test_scalars_are_spelled_as_json_does() -> None:
    template = "https://p.example/{a}/{b}/{c}"
    assert (
        navigate_url(template, 1, "eval", go(a=True, b=3, c=1.5)) == "https://p.example/true/3/1.5"
    )


def test_a_missing_placeholder_is_refused() -> None:
    assert navigate_url(TEMPLATE, 7, "data", go(other="x")) is None


@pytest.mark.parametrize(
    "template",
    [
        "https://p.example/{target.__class__}",  # attribute access
        "https://p.example/{target[0]}",  # indexing
        "https://p.example/{target!r}",  # conversion
        "https://p.example/{target:>10}",  # format spec
        "https://p.example/{}",  # positional
        "https://p.example/{target",  # unbalanced
    ],
)
def test_a_template_reaching_beyond_plain_names_is_refused(template: str) -> None:
    assert navigate_url(template, 7, "data", go(target="x")) is None


@pytest.mark.parametrize(
    "template",
    ["{target}", "{target}:alert(1)", "/projects/{project_id}", "ftp://p.example/{target}",
     "javascript:alert('{target}')", "https:///{target}"],
)  # fmt: skip
def test_a_result_that_is_not_absolute_http_is_refused(template: str) -> None:
    assert navigate_url(template, 7, "data", go(target="javascript:alert(1)")) is None


def test_project_and_stage_are_the_servers_not_the_params() -> None:
    url = navigate_url(TEMPLATE + "/{stage}", 7, "data", go(target="t", project_id="../x"))
    assert url == "https://platform.example/projects/7/t/data"


def test_escaped_braces_stay_literal() -> None:
    url = navigate_url("https://p.example/{{raw}}/{target}", 7, "data", go(target="x"))
    assert url == "https://p.example/{raw}/x"


@given(st.text())
def test_any_text_stays_inside_its_segment(target: str) -> None:
    url = navigate_url(TEMPLATE + "?after=1", 7, "data", go(target=target))
    if url is not None:
        prefix = "https://platform.example/projects/7/"
        assert url.startswith(prefix) and url.endswith("?after=1")
        segment = url[len(prefix) : -len("?after=1")]
        assert not set(segment) & set("/?#:\"'<> \\") and segment not in ("", ".", "..")
