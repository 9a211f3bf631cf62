"""The API's docs pages render in a real browser, offline, and show the whole of both documents.

Given a live API and headless Chromium that may not reach beyond loopback, when a user opens
/docs or /asyncapi, then the page renders every operation (OpenAPI) or every operation and
channel (AsyncAPI) of the document the API serves, with no request leaving the machine and no
script error.
"""

from __future__ import annotations

from typing import Any

import httpx
from playwright.async_api import Page

from tests.browser.conftest import BROWSER_TESTS, LiveApi, PageWatch

pytestmark = BROWSER_TESTS

#: The keys of an OpenAPI path item that are operations (the others are shared parts).
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


async def get_json(url: str) -> Any:
    """The JSON document the API serves at `url`."""
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    response.raise_for_status()
    return response.json()


def openapi_operations(doc: dict[str, Any]) -> set[tuple[str, str]]:
    """(METHOD, path) of every operation of an OpenAPI document."""
    return {
        (method.upper(), path)
        for path, item in doc["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def channel_address(doc: dict[str, Any], operation: dict[str, Any]) -> str:
    """The address of the channel an AsyncAPI 3 operation points at (``#/channels/<name>``)."""
    name = operation["channel"]["$ref"].removeprefix("#/channels/")
    return str(doc["channels"][name]["address"])


async def test_swagger_ui_lists_every_operation_of_the_openapi_document(
    live_api: LiveApi, watched_page: tuple[Page, PageWatch]
) -> None:
    page, watch = watched_page
    expected = openapi_operations(await get_json(live_api.url("/openapi.json")))
    assert expected, "the API documents operations"

    await page.goto(live_api.url("/docs"))
    await watch.wait_rendered(page.locator(".opblock"))
    rendered = await page.locator(".opblock").evaluate_all(
        """blocks => blocks.map(block => [
            block.querySelector('.opblock-summary-method').textContent.trim(),
            block.querySelector('.opblock-summary-path').dataset.path,
        ])"""
    )

    assert {(method, path) for method, path in rendered} == expected
    watch.assert_offline_and_clean()


async def test_asyncapi_page_lists_every_operation_and_channel_of_the_asyncapi_document(
    live_api: LiveApi, watched_page: tuple[Page, PageWatch]
) -> None:
    page, watch = watched_page
    doc = await get_json(live_api.url("/asyncapi.json"))
    assert doc["operations"] and doc["channels"], "the document describes the streams"

    await page.goto(live_api.url("/asyncapi"))
    section = page.locator("#operations")
    await watch.wait_rendered(section)

    for op_id, operation in doc["operations"].items():
        # The component gives each operation the id operation-<action>-<operationId>.
        block = section.locator(f'[id="operation-{operation["action"]}-{op_id}"]')
        assert await block.count() == 1, f"operation {op_id} is not rendered"
        text: str = await block.inner_text()
        assert channel_address(doc, operation) in text, op_id
    shown: str = await section.inner_text()
    missing = [c["address"] for c in doc["channels"].values() if c["address"] not in shown]
    assert not missing, f"channels not rendered: {missing}"
    watch.assert_offline_and_clean()
