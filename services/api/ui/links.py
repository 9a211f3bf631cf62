"""The dashboard's URLs of things, built in one place with proper quoting.

Run ids, event ids and entry ids may hold ``/``, ``%``, spaces, ``#`` or any other character:
each is quoted as one path segment (or fragment), so ``/ui/runs/team%2Fa%20run`` names the run
``team/a run`` and the page route (a ``path`` converter) gets it back whole.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

RUNS = "/ui/runs/"
DEAD_LETTERS = "/ui/dead-letters/"
PROJECTS = "/ui/projects/"
SEARCH = "/ui/search"
ACTIONS = "/ui/actions"
LOGIN = "/ui/login"
#: The prefix of an event row's HTML id on the run page (``#event-<event id>``).
EVENT_ANCHOR = "event-"


def _query(params: dict[str, object]) -> str:
    # False, None and "" leave a parameter out: the page's defaults need no query string.
    kept = {
        k: ("true" if v is True else v) for k, v in params.items() if v not in (None, False, "")
    }
    return f"?{urlencode(kept)}" if kept else ""


def run_url(run_id: str, **params: object) -> str:
    """The run page of `run_id`, with query parameters (``children``, ``cursor``, ``limit``)."""
    return RUNS + quote(run_id, safe="") + _query(params)


def event_anchor(event_id: str) -> str:
    """The HTML id of an event's row on its run page."""
    return EVENT_ANCHOR + event_id


def event_url(run_id: str, event_id: str) -> str:
    """An event on its run's page (the page scrolls to its row)."""
    return run_url(run_id) + "#" + quote(event_anchor(event_id), safe="")


def dead_letter_url(entry_id: str) -> str:
    """The page of one dead letter."""
    return DEAD_LETTERS + quote(entry_id, safe="")


def project_url(project_id: int) -> str:
    """A project's page."""
    return f"{PROJECTS}{int(project_id)}"


def login_url(next_target: str) -> str:
    """The sign-in page, which comes back to `next_target` (a dashboard path and its query)."""
    return f"{LOGIN}?next={quote(next_target, safe='/')}"


def search_url(query: str) -> str:
    """The search page for `query`."""
    return SEARCH + _query({"q": query})


def dead_letters_url(**params: object) -> str:
    """The dead-letters page filtered by `params` (``source``, ``stage``, ``reason``, ...)."""
    return DEAD_LETTERS.rstrip("/") + _query(params)
