"""The dashboard's pure pieces: sessions, CSRF tokens, safe redirects, hashed assets, filters."""

from __future__ import annotations

import base64
import hashlib

import pytest
from pydantic import SecretStr

from services.api.ui import assets
from services.api.ui.access import csrf_token, issue_session, read_session, token_matches
from services.api.ui.render import environment, hexdump, visible, when
from services.api.ui.session import safe_next
from shared.settings import Settings

NOW = 1_800_000_000.0


def settings(token: str | None = "s3cret") -> Settings:
    return Settings(api_token=SecretStr(token) if token is not None else None)


def test_a_session_issued_with_the_token_reads_back_with_its_operator() -> None:
    cookie = issue_session(settings(), "ada", now=NOW)
    session = read_session(settings(), cookie, now=NOW + 60)
    assert session is not None and session.who == "ada"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda c: c[:-2] + ("AA" if not c.endswith("AA") else "BB"),  # signature changed
        lambda c: "e30" + c[3:],  # payload changed
        lambda c: c.replace(".", ""),  # no signature at all
        lambda c: "",
    ],
)
def test_a_forged_cookie_is_no_session(tamper: object) -> None:
    cookie = issue_session(settings(), "ada", now=NOW)
    assert callable(tamper)
    assert read_session(settings(), tamper(cookie), now=NOW) is None


def test_a_session_ends_when_it_expires_or_the_token_changes() -> None:
    cookie = issue_session(settings(), "ada", now=NOW)
    assert read_session(settings(), cookie, now=NOW + 13 * 3600) is None
    assert read_session(settings("rotated"), cookie, now=NOW) is None
    assert read_session(settings(None), cookie, now=NOW) is None


def test_csrf_tokens_are_per_session() -> None:
    one = read_session(settings(), issue_session(settings(), "ada", now=NOW), now=NOW)
    two = read_session(settings(), issue_session(settings(), "ada", now=NOW), now=NOW)
    assert one is not None and two is not None
    assert csrf_token(settings(), one) != csrf_token(settings(), two)


def test_the_token_check_needs_a_configured_token() -> None:
    assert token_matches(settings(), "s3cret")
    assert not token_matches(settings(), "wrong")
    assert not token_matches(settings(None), "")
    assert not token_matches(settings(""), "")


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/ui/dead-letters?reason=x", "/ui/dead-letters?reason=x"),
        ("https://evil.example/ui", "/ui"),
        ("//evil.example/ui", "/ui"),
        ("/api/status", "/ui"),
        ("/uix", "/ui"),
        (None, "/ui"),
    ],
)
def test_after_sign_in_only_dashboard_paths_are_followed(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_own_assets_are_served_under_their_hash_with_a_matching_integrity() -> None:
    css = assets.own_assets()["ui.css"]
    digest = hashlib.sha256(css.path.read_bytes()).digest()
    asset = css.asset
    assert asset.url == f"/ui/static/{digest.hex()[:16]}/ui.css"
    assert asset.integrity == "sha256-" + base64.b64encode(digest).decode()
    assert assets.lookup(digest.hex()[:16], "ui.css") == css.path
    assert assets.lookup("0" * 16, "ui.css") is None
    assert assets.lookup(digest.hex()[:16], "../access.py") is None


def test_vendored_assets_carry_the_manifest_hash() -> None:
    asset = assets.vendored("htmx", "dist/htmx.min.js")
    path = assets.manifest().files()[asset.url.removeprefix("/static/vendor/")]
    digest = hashlib.sha256(path.read_bytes()).digest()
    assert asset.integrity == "sha256-" + base64.b64encode(digest).decode()


def test_hostile_text_is_escaped_and_its_invisible_characters_shown() -> None:
    hostile = "<script>alert(1)</script>\u202egnp.exe\x00"
    html = environment().from_string("{{ text | visible }}").render(text=hostile)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "\u202e" not in html and "\\u202e" in html
    assert "\x00" not in html and "\\u0000" in html
    assert visible("line\nnext\ttab") == "line\nnext\ttab"


def test_a_name_that_was_not_utf8_shows_its_bytes_and_the_page_encodes() -> None:
    # a source entry's field name b"x\xff" reads back as "x\udcff" (surrogateescape)
    name = b"x\xff".decode("utf-8", "surrogateescape")
    html = environment().from_string("<code>{{ name | visible }}</code>").render(name=name)
    assert html == "<code>x\\xff</code>"
    html.encode("utf-8")  # a lone surrogate left in would make the response fail to encode
    assert visible("\ud800") == "\\ud800"


def test_hexdump_and_times() -> None:
    assert hexdump(b"AB\x00") == "00000000  41 42 00" + " " * 40 + " AB."
    assert when("2026-01-02T03:04:05.123456+01:00") == "2026-01-02T02:04:05.123Z"
    assert when(None) == ""
