"""The dashboard's access rules, over HTTP: read-only by default, writes after signing in.

Given an API with or without a token, when a browser-like client reads pages, signs in and
posts, then only a signed-in session with its CSRF token and the dashboard's origin may write.
"""

from __future__ import annotations

import html
import re
from collections.abc import Awaitable, Callable

import httpx
import pytest

from services.api.ui.access import SESSION_COOKIE

pytestmark = pytest.mark.integration
MakeClient = Callable[..., Awaitable[httpx.AsyncClient]]
TOKEN = "dash-token"


def csrf_of(html: str) -> str:
    found = re.search(r'data-csrf="([^"]+)"', html)
    assert found, "the page carries no CSRF token"
    return found.group(1)


async def signed_in(make_client: MakeClient, **overrides: object) -> tuple[httpx.AsyncClient, str]:
    client = await make_client(api_token=TOKEN, **overrides)
    reply = await client.post("/ui/login", data={"token": TOKEN, "who": "ada", "next": "/ui"})
    assert reply.status_code == 303 and reply.headers["location"] == "/ui"
    cookie = reply.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
    page = await client.get("/ui")
    return client, csrf_of(page.text)


async def test_pages_are_html_with_a_strict_policy_and_errors_stay_json_outside(
    http: httpx.AsyncClient,
) -> None:
    page = await http.get("/ui")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    missing = await http.get("/ui/no-such-page")
    assert missing.status_code == 404 and "<h1>not_found</h1>" in missing.text
    assert (await http.get("/api/no-such-route")).json()["error"] == "not_found"


async def test_every_asset_a_page_names_is_served_by_the_app(http: httpx.AsyncClient) -> None:
    page = (await http.get("/ui")).text
    urls = re.findall(r'(?:src|href)="(/(?:ui/)?static/[^"]+)"', page)
    assert len(urls) >= 4
    for url in urls:
        reply = await http.get(url)
        assert reply.status_code == 200, url
        assert "immutable" in reply.headers["cache-control"]


async def test_a_page_names_its_icon_so_a_browser_never_asks_for_one(
    http: httpx.AsyncClient,
) -> None:
    # without one, Chromium requests /favicon.ico and logs the 404 as an error on every page
    page = (await http.get("/ui")).text
    assert '<link rel="icon" href="data:,">' in page
    assert "data:" in (await http.get("/ui")).headers["content-security-policy"].split("img-src")[1]


async def test_without_a_token_the_dashboard_is_read_only(http: httpx.AsyncClient) -> None:
    page = (await http.get("/ui")).text
    assert "read-only" in page and "data-csrf" not in page and "sign out" not in page
    reply = await http.post("/ui/logout")
    assert reply.status_code == 403 and 'data-error="read_only"' in reply.text
    login = await http.post("/ui/login", data={"token": ""})
    assert login.status_code == 403 and SESSION_COOKIE not in login.headers.get("set-cookie", "")


async def test_a_wrong_token_signs_nobody_in(make_client: MakeClient) -> None:
    client = await make_client(api_token=TOKEN)
    reply = await client.post("/ui/login", data={"token": "guess"})
    assert reply.status_code == 403 and "not the API token" in reply.text
    assert "set-cookie" not in reply.headers
    assert (await client.post("/ui/logout")).status_code == 403


async def test_a_signed_in_write_needs_the_csrf_token_and_the_own_origin(
    make_client: MakeClient,
) -> None:
    client, csrf = await signed_in(make_client)
    assert "signed in as ada" in (await client.get("/ui")).text
    forged = await client.post("/ui/logout", data={"csrf": "x" + csrf})
    assert forged.status_code == 403 and 'data-error="csrf_failed"' in forged.text
    foreign = await client.post(
        "/ui/logout", data={"csrf": csrf}, headers={"Origin": "https://evil.example"}
    )
    assert foreign.status_code == 403 and 'data-error="cross_origin"' in foreign.text
    done = await client.post("/ui/logout", headers={"X-CSRF-Token": csrf})
    assert done.status_code == 303
    assert f'{SESSION_COOKIE}=""' in done.headers["set-cookie"]


async def test_when_reads_need_the_token_pages_send_to_sign_in_and_back(
    make_client: MakeClient,
) -> None:
    client = await make_client(api_token=TOKEN, api_read_token_required=True)
    reply = await client.get("/ui?x=1")
    assert reply.status_code == 303
    assert reply.headers["location"] == "/ui/login?next=/ui%3Fx%3D1"
    assert (await client.get("/ui/login")).status_code == 200
    await client.post("/ui/login", data={"token": TOKEN, "next": "/ui?x=1"})
    assert (await client.get("/ui?x=1")).status_code == 200


@pytest.mark.parametrize(
    "where", ["/ui/dead-letters?family=malformed_json&stage=validator", "/ui/runs/team%2Fa%20run"]
)
async def test_signing_in_from_a_page_comes_back_to_it_with_its_filter(
    make_client: MakeClient, where: str
) -> None:
    # given a read-only visitor on a filtered page (the filter is its URL), or a quoted run id
    client = await make_client(api_token=TOKEN)
    page = (await client.get(where)).text
    # when they follow the header's sign-in link and sign in
    link = re.search(r'<a href="(/ui/login\?next=[^"]+)">sign in</a>', page)
    assert link, "the header offers no sign-in link"
    form = (await client.get(html.unescape(link.group(1)))).text
    found = re.search(r'name="next" value="([^"]+)"', form)
    assert found
    reply = await client.post("/ui/login", data={"token": TOKEN, "next": html.unescape(found[1])})
    # then they are back where they were, with the same filter
    assert reply.status_code == 303 and reply.headers["location"] == where


async def test_a_sign_in_posted_from_another_site_is_refused(make_client: MakeClient) -> None:
    # the sign-in form has no session to bind a CSRF token to: its origin is what is checked
    client = await make_client(api_token=TOKEN)
    reply = await client.post(
        "/ui/login", data={"token": TOKEN}, headers={"Origin": "https://evil.example"}
    )
    assert reply.status_code == 403 and 'data-error="cross_origin"' in reply.text
    assert "set-cookie" not in reply.headers
    own = await client.post(
        "/ui/login", data={"token": TOKEN}, headers={"Origin": "http://runbus.test"}
    )
    assert own.status_code == 303 and SESSION_COOKIE in own.headers["set-cookie"]
