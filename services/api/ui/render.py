"""Rendering: one Jinja2 environment, its filters, and the page and fragment responses.

Autoescaping is on for every template and nothing is marked safe: event text is hostile (script
tags, RTL overrides, NUL bytes) and must render as text. The Content-Security-Policy every page
carries allows only the app's own scripts and styles, so even an escaping slip runs nothing.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
import orjson
from fastapi import Request
from fastapi.responses import HTMLResponse

from services.api.search import MAX_QUERY
from services.api.ui import assets, links
from services.api.ui.access import CSRF_FIELD, access_of, target_of
from shared import __version__

TEMPLATES = Path(__file__).parent / "templates"
#: Same-origin everything; no inline script or style, no eval, no framing.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
#: Severity words by level, for the badge text (colour is never the only signal).
SEVERITY_WORDS = {"warn": "warning"}
#: Characters shown as visible marks: controls, bidirectional overrides/isolates, and lone
#: surrogates (which UTF-8 cannot encode: one would fail the whole response).
_INVISIBLE = {"Cc", "Cf", "Cs"}
#: Where surrogateescape puts an undecodable byte b: U+DC00 + b (b >= 0x80).
_ESCAPED_BYTES = range(0xDC80, 0xDD00)


def _mark(ch: str) -> str:
    code = ord(ch)
    # A byte that was not UTF-8 (a source entry's field name) shows as that byte.
    return f"\\x{code - 0xDC00:02x}" if code in _ESCAPED_BYTES else f"\\u{code:04x}"


def visible(text: object) -> str:
    """`text` with control and format characters (NUL, RTL overrides) shown as ``\\u…`` marks,
    and an undecodable byte kept by surrogateescape as ``\\x…``.

    Escaping keeps markup inert; this keeps the reader from being fooled by text that reorders
    or hides itself. Newlines and tabs stay.
    """
    out = []
    for ch in str(text):
        if ch in "\n\t" or unicodedata.category(ch) not in _INVISIBLE:
            out.append(ch)
        else:
            out.append(_mark(ch))
    return "".join(out)


def when(value: datetime | str | None) -> str:
    """A time as UTC ISO 8601 with milliseconds (what every page shows)."""
    if value is None:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def pretty_json(value: Any) -> str:
    """Indented JSON of a payload (sorted keys), for an expandable block."""
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()


def severity_word(level: str | None) -> str:
    """The word a severity badge says."""
    return SEVERITY_WORDS.get(level or "", level or "")


def http_url(value: str | None) -> str:
    """`value` when it is an absolute http(s) URL, else "" (never a ``javascript:`` link)."""
    if not value:
        return ""
    parts = urlsplit(value)
    return value if parts.scheme in ("http", "https") and parts.netloc else ""


def hexdump(data: bytes, width: int = 16) -> str:
    """Offset, hex bytes and printable ASCII, one line per `width` bytes."""
    lines = []
    for offset in range(0, len(data), width):
        chunk = data[offset : offset + width]
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{offset:08x}  {chunk.hex(' '):<{width * 3}} {text}")
    return "\n".join(lines)


@functools.cache
def environment() -> jinja2.Environment:
    """The templates' environment (built once: templates are part of the code)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        visible=visible, when=when, pretty_json=pretty_json, severity_word=severity_word,
        hexdump=hexdump, http_url=http_url,
    )  # fmt: skip
    env.globals.update(own=assets.own, vendored=assets.vendored, version=__version__)
    env.globals["csrf_field"] = CSRF_FIELD
    env.globals["search_max"] = MAX_QUERY
    env.globals.update(
        run_url=links.run_url, event_url=links.event_url, event_anchor=links.event_anchor,
        dead_letter_url=links.dead_letter_url, project_url=links.project_url,
        login_url=links.login_url, target_of=target_of,
    )  # fmt: skip
    return env


def render(request: Request, template: str, context: Mapping[str, Any]) -> str:
    """`template` rendered for this request (settings and access are always in the context)."""
    settings = request.app.state.settings
    base = {"request": request, "settings": settings, "access": access_of(request)}
    return environment().get_template(template).render({**base, **context})


def partial(request: Request) -> bool:
    """True for an htmx update of a section (not a history restore, which wants the page)."""
    headers = request.headers
    return headers.get("hx-request") == "true" and headers.get("hx-history-restore-request") is None


def page(request: Request, template: str, code: int = 200, **context: Any) -> HTMLResponse:
    """A full page (or an htmx fragment: any template) with HTTP status `code` and the security
    headers."""
    return HTMLResponse(render(request, template, context), code, SECURITY_HEADERS)
