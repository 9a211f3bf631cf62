"""Signing in and out: the token is checked once, then a signed session cookie stands for it."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from services.api.ui.access import (
    COOKIE_PATH,
    SESSION_COOKIE,
    SESSION_TTL_S,
    Access,
    SignInFirst,
    check_origin,
    issue_session,
    require_ui_write,
    token_matches,
)
from services.api.ui.links import login_url
from services.api.ui.render import page

router = APIRouter()
HOME = "/ui"


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of the dashboard only (never another site)."""
    if not target:
        return HOME
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not (target == HOME or target.startswith(HOME + "/")):
        return HOME
    return target


@router.get("/login")
async def login_page(request: Request, next: str | None = None) -> Response:
    """The sign-in form (a read-only dashboard says why there is nothing to sign in to)."""
    return page(request, "login.html", next=safe_next(next), failed=False)


@router.post("/login")
async def login(
    request: Request,
    token: Annotated[str, Form(max_length=4096)] = "",
    who: Annotated[str, Form(max_length=256)] = "",
    next: Annotated[str, Form(max_length=2048)] = HOME,
) -> Response:
    """Check the token; on success set the session cookie and go on to `next`."""
    check_origin(request)
    settings = request.app.state.settings
    if not token_matches(settings, token):
        return page(request, "login.html", 403, next=safe_next(next), failed=True)
    name = who.strip() or settings.operator or "dashboard"
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        issue_session(settings, name),
        max_age=SESSION_TTL_S,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
async def logout(_: Annotated[Access, Depends(require_ui_write)]) -> Response:
    """End the session (the cookie is dropped; the token itself stays valid)."""
    response = RedirectResponse(HOME, status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
    return response


def sign_in_redirect(_: Request, exc: Exception) -> Response:
    """`SignInFirst` -> 303 to the sign-in page, coming back afterwards."""
    assert isinstance(exc, SignInFirst)
    return RedirectResponse(login_url(exc.next_path), 303)
