"""Who may do what on the dashboard: read-only by default, writes after signing in.

Writes (redrive, purge, action requests) need the API token (``RUNBUS_API_TOKEN``). With no
token configured the dashboard is read-only: its pages render no write control and its write
routes answer 403 ``read_only``. With a token, an operator signs in once with it on
``/ui/login``; the session is a cookie signed with a key derived from the token (HttpOnly,
SameSite=Strict, scoped to ``/ui``), so changing the token ends every session. Every write
carries a CSRF token bound to the session (a hidden form field, or the ``X-CSRF-Token``
header htmx sends) and must come from the dashboard's own origin.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import orjson
from fastapi import Request

from services.api.errors import ApiError
from shared.settings import Settings

SESSION_COOKIE = "runbus_ui"
COOKIE_PATH = "/ui"
SESSION_TTL_S = 12 * 3600
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
MAX_WHO = 64


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in operator: the name they gave and the session's own random id."""

    who: str
    nonce: str
    expires: int


@dataclass(frozen=True, slots=True)
class Access:
    """What the current request may do, for the templates and the write routes."""

    #: A token is configured: writes are possible once signed in.
    writes_enabled: bool
    #: Reads need a signed-in session (``RUNBUS_API_READ_TOKEN_REQUIRED``).
    reads_need_login: bool
    session: Session | None = None
    csrf: str | None = None

    @property
    def can_write(self) -> bool:
        """True when write controls are shown and write routes accept this session."""
        return self.writes_enabled and self.session is not None

    @property
    def who(self) -> str | None:
        """The signed-in operator's name."""
        return self.session.who if self.session else None


def _token(settings: Settings) -> bytes | None:
    token = settings.api_token
    if token is None or not token.get_secret_value():
        return None
    return token.get_secret_value().encode()


def _key(token: bytes) -> bytes:
    # A key of its own: a leaked cookie signature says nothing about the token itself.
    return hashlib.sha256(b"runbus-ui-session\0" + token).digest()


def _sign(key: bytes, data: bytes) -> str:
    return base64.urlsafe_b64encode(hmac.digest(key, data, "sha256")).decode().rstrip("=")


def token_matches(settings: Settings, given: str) -> bool:
    """True when `given` is the configured API token (constant time)."""
    token = _token(settings)
    return token is not None and hmac.compare_digest(given.strip().encode(), token)


def issue_session(settings: Settings, who: str, now: float | None = None) -> str:
    """A signed session cookie value for operator `who` (the token must be configured)."""
    token = _token(settings)
    if token is None:
        raise ApiError(403, "read_only", "the dashboard is read-only: no API token is configured")
    expires = int((now or time.time()) + SESSION_TTL_S)
    body = orjson.dumps({"who": who[:MAX_WHO], "n": secrets.token_urlsafe(12), "exp": expires})
    payload = base64.urlsafe_b64encode(body).decode().rstrip("=")
    return f"{payload}.{_sign(_key(token), payload.encode())}"


def read_session(
    settings: Settings, cookie: str | None, now: float | None = None
) -> Session | None:
    """The session a cookie value holds, or None (absent, forged, expired, or another token's)."""
    token = _token(settings)
    if token is None or not cookie or cookie.count(".") != 1:
        return None
    payload, signature = cookie.split(".")
    if not hmac.compare_digest(signature, _sign(_key(token), payload.encode())):
        return None
    try:
        doc = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        session = Session(str(doc["who"]), str(doc["n"]), int(doc["exp"]))
    except (ValueError, KeyError, TypeError):
        return None
    return session if session.expires > (now or time.time()) else None


def csrf_token(settings: Settings, session: Session) -> str:
    """The CSRF token of a session: only a page rendered for this session knows it."""
    token = _token(settings)
    assert token is not None, "a session exists only when a token is configured"
    return _sign(_key(token), b"csrf\0" + session.nonce.encode())


def access_of(request: Request) -> Access:
    """The access of this request (from its session cookie)."""
    settings: Settings = request.app.state.settings
    session = read_session(settings, request.cookies.get(SESSION_COOKIE))
    csrf = csrf_token(settings, session) if session else None
    return Access(_token(settings) is not None, settings.api_read_token_required, session, csrf)


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        # Browsers send Origin on every POST; a missing one is a non-browser client, which
        # still needs the session cookie and the CSRF token.
        return origin is None
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1] == host


def check_origin(request: Request) -> None:
    """403 ``cross_origin`` for a post another site's page made (the sign-in form too: it has no
    session to bind a CSRF token to)."""
    if not _same_origin(request):
        raise ApiError(403, "cross_origin", "writes must come from the dashboard's own pages")


async def require_ui_write(request: Request) -> Access:
    """The access of a write request, or 403: read-only, not signed in, foreign, bad CSRF."""
    access = access_of(request)
    if not access.writes_enabled:
        raise ApiError(403, "read_only", "the dashboard is read-only: no API token is configured")
    if access.session is None or access.csrf is None:
        raise ApiError(403, "login_required", "sign in with the API token to make changes")
    check_origin(request)
    given = request.headers.get(CSRF_HEADER)
    if given is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    if given is None or not hmac.compare_digest(given.encode(), access.csrf.encode()):
        raise ApiError(403, "csrf_failed", "the form is stale or forged: reload the page")
    return access


def target_of(request: Request) -> str:
    """The path and query `request` asked for, as sent (``%2F`` in a run id stays quoted): where
    to come back to after signing in."""
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else request.url.path
    query = request.url.query
    return path + (f"?{query}" if query else "")


class SignInFirst(Exception):
    """Raised by `require_ui_read` when reads need a session: the page redirects to sign-in."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


async def require_ui_read(request: Request) -> Access:
    """The access of a read; `SignInFirst` when reads need the token and no one signed in."""
    access = access_of(request)
    if access.reads_need_login and access.session is None:
        raise SignInFirst(target_of(request))
    return access
