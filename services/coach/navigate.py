"""The URL a navigate action opens: ``RUNBUS_ACTION_URL_TEMPLATE`` filled in, or nothing.

Params come from the coach, whose rules read event payloads: they are hostile text. So every
value is URL-quoted whole (``/``, ``:``, ``?``, ``#`` included: a value is one path segment or
one query value, never structure), a value that is empty or a dot segment (``.``, ``..``) is
refused (browsers resolve those even percent-encoded), and the result must be an absolute
http(s) URL.
The template is the operator's; only plain ``{name}`` placeholders are filled (no attribute,
index, conversion or format spec: `str.format` would let a template reach into objects).
"""

from __future__ import annotations

from string import Formatter
from typing import Any
from urllib.parse import quote, urlsplit

from shared.models import Action, NavigateAction

SCHEMES = frozenset({"http", "https"})
#: Path segments a browser resolves (WHATWG URL: also ``%2e`` spelled), so never a value.
DOT_SEGMENTS = frozenset({".", ".."})


def _text(value: Any) -> str | None:
    """A param as text: strings as they are, numbers in decimal, booleans as JSON spells them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None  # null, lists, objects: no single text to put in a URL


def _quoted(value: Any) -> str | None:
    text = _text(value)
    if not text or text in DOT_SEGMENTS:  # empty: the URL would lose a segment (a//b)
        return None
    try:
        return quote(text, safe="")
    except UnicodeEncodeError:  # a lone surrogate: no UTF-8 to percent-encode
        return None


def _fill(template: str, values: dict[str, Any]) -> str | None:
    """The template with each ``{name}`` replaced by its quoted value; None if any cannot be."""
    try:
        pieces = list(Formatter().parse(template))
    except ValueError:  # unbalanced braces
        return None
    out: list[str] = []
    for literal, name, spec, conversion in pieces:
        out.append(literal)
        if name is None:
            continue
        if spec or conversion or not name.isidentifier() or name not in values:
            return None
        quoted = _quoted(values[name])
        if quoted is None:
            return None
        out.append(quoted)
    return "".join(out)


def _absolute_http(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an invalid IPv6 host
        return False
    return parts.scheme.lower() in SCHEMES and bool(parts.netloc)


def navigate_url(template: str | None, project_id: int, stage: str, action: Action) -> str | None:
    """The URL a navigate `action` of (`project_id`, `stage`) opens, or None.

    None without a template, for another action kind, when the template names a placeholder
    that neither the request (`project_id`, `stage`) nor the action's params have, when a value
    is not a scalar, is empty or is a dot segment, and when the result is not an absolute
    http(s) URL.
    `project_id` and `stage` are the server's own: a param of that name does not replace them.
    """
    if template is None or not isinstance(action, NavigateAction):
        return None
    url = _fill(template, {**action.params, "project_id": project_id, "stage": stage})
    return url if url is not None and _absolute_http(url) else None
