"""The dashboard's links: any id becomes one quoted path segment (or fragment)."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import pytest

from services.api.ui.links import dead_letter_url, event_url, project_url, run_url, search_url


@pytest.mark.parametrize("run_id", ["exp-42", "team/a run", "100%", "a#b?c=d&e", "é/ü", "..x"])
def test_a_run_id_is_one_quoted_segment_that_decodes_back(run_id: str) -> None:
    url = run_url(run_id)
    parts = urlsplit(url)
    assert parts.query == "" and parts.fragment == ""
    assert unquote(parts.path.removeprefix("/ui/runs/")) == run_id
    assert "/" not in parts.path.removeprefix("/ui/runs/")


def test_query_parameters_leave_out_the_defaults() -> None:
    assert run_url("r", children=False, cursor=None, limit=None) == "/ui/runs/r"
    assert run_url("r", children=True, cursor="12.3", limit=5) == (
        "/ui/runs/r?children=true&cursor=12.3&limit=5"
    )


def test_event_dead_letter_project_and_search_links() -> None:
    assert event_url("a/b", "evt-1:2") == "/ui/runs/a%2Fb#event-evt-1%3A2"
    assert dead_letter_url("2:1700000000000-0") == "/ui/dead-letters/2%3A1700000000000-0"
    assert project_url(7) == "/ui/projects/7"
    assert search_url("a b&c") == "/ui/search?q=a+b%26c"
    assert search_url("") == "/ui/search"
