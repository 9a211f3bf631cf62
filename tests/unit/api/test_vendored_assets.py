"""The docs pages work offline: every asset is vendored, pinned by hash, and served by the app."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from html.parser import HTMLParser

import httpx
import pytest

from services.api.app import create_app
from services.api.static import URL_PREFIX, VENDOR_DIR, manifest
from shared.settings import Settings

PAGES = ["/docs", "/asyncapi"]


class _Links(HTMLParser):
    """Every URL an HTML page makes the browser load or link to (src, href)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in {"src", "href"} and value]


def links(page: str) -> list[str]:
    parser = _Links()
    parser.feed(page)
    return parser.urls


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """The app without its lifespan: the docs pages need no Redis."""
    app = create_app(Settings(_env_file=None))  # type: ignore[call-arg]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://runbus.test") as client:
        yield client


def test_every_vendored_file_matches_its_pinned_sha256() -> None:
    for pkg in manifest().packages:
        for item in pkg.files:
            data = (VENDOR_DIR / pkg.folder / item.path).read_bytes()
            assert hashlib.sha256(data).hexdigest() == item.sha256, f"{pkg.folder}/{item.path}"


def test_the_vendor_folder_holds_exactly_the_manifest_files_and_their_licences() -> None:
    on_disk = {
        str(path.relative_to(VENDOR_DIR))
        for path in VENDOR_DIR.rglob("*")
        if path.is_file() and path != VENDOR_DIR / "manifest.json"
    }
    assert on_disk == set(manifest().files())
    for pkg in manifest().packages:
        assert pkg.license and (VENDOR_DIR / pkg.folder / "LICENSE").is_file(), pkg.name


@pytest.mark.parametrize("page", PAGES)
async def test_a_docs_page_references_no_url_outside_the_app(
    http: httpx.AsyncClient, page: str
) -> None:
    response = await http.get(page)
    assert response.status_code == 200
    assert "://" not in response.text  # no absolute URL at all, in markup or inline script
    urls = links(response.text)
    assert urls, "the page loads its scripts and styles"
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), url


@pytest.mark.parametrize("page", PAGES)
async def test_every_asset_of_a_docs_page_is_served_with_a_long_cache(
    http: httpx.AsyncClient, page: str
) -> None:
    for url in links((await http.get(page)).text):
        assert url.startswith(URL_PREFIX), url
        response = await http.get(url)
        assert response.status_code == 200, url
        assert "immutable" in response.headers["cache-control"]


async def test_only_manifest_files_are_served(http: httpx.AsyncClient) -> None:
    for name in ("manifest.json", "swagger-ui@5.35.0/../../__init__.py", "x.js"):
        response = await http.get(f"{URL_PREFIX}/{name}")
        assert response.status_code == 404, name
        assert response.json()["error"] in {"asset_not_found", "not_found"}


async def test_redoc_is_not_served(http: httpx.AsyncClient) -> None:
    # ReDoc would need its own vendored bundle and web fonts; Swagger UI covers the document.
    assert (await http.get("/redoc")).status_code == 404
