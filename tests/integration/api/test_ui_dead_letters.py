"""The dead-letter console over HTTP: filters in the URL, one dead letter in full, redrive and
purge in two steps, the audit log.

Given dead letters written to the real Redis the way the consumers write them, when a
browser-like client reads the console's pages and posts its forms, then the page lists what
``GET /api/dead-letters`` lists for the same filter, bad input is a 422 page, hostile bytes
render inert, a preview changes no stream, and a confirmation moves (or deletes) exactly the
previewed dead letters and writes one audit record.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import redis

from services.api.ui.dead_letters import PAGE_SIZE
from services.ops.deadletters import read_audit
from shared.connections import async_redis
from shared.models import DeadLetter
from shared.settings import Settings
from shared.wire import REDRIVEN_FROM_FIELD, as_text, dead_letter_fields
from tests.integration.api.test_ui_access import TOKEN, signed_in

pytestmark = pytest.mark.integration
MakeClient = Callable[..., Awaitable[httpx.AsyncClient]]
HOSTILE = "<script>alert(1)</script>\u202eevil\u0000end"


def letter(settings: Settings, **overrides: Any) -> DeadLetter:
    """A dead letter as the validator writes one (overrides change any field)."""
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "errors": ["invalid_reason_code:training_gpu_on_fire"],
        "message": "reason code not in the taxonomy",
        "original": b'{"stage": "training"}',
        "source_stream": settings.names.events,
        "source_id": "1700000000000-0",
        "group": "validator",
        "consumer": "validator-1",
        "stage": "validator",
        "delivery_count": 1,
        "first_seen": now,
        "dead_at": now,
        "taxonomy_version": "tax-1",
        "service_version": "0.0.0",
        "hint": {"summary": "gpu on fire"},
    }
    return DeadLetter(**(values | overrides))


def dead(
    client: redis.Redis, settings: Settings, *letters: DeadLetter, at_ms: int = 0
) -> list[str]:
    """XADD each dead letter to the dead-letter stream (at a given time when `at_ms`)."""
    ids = []
    for n, one in enumerate(letters):
        entry_id = f"{at_ms + n}-0" if at_ms else "*"
        fields: Any = dead_letter_fields(one)
        ids.append(as_text(client.xadd(settings.names.dead, fields, id=entry_id)))
    return ids


def entries(client: redis.Redis, stream: str) -> list[tuple[str, dict[bytes, bytes]]]:
    """Every entry of `stream`, oldest first."""
    reply: Any = client.xrange(stream)
    return [(as_text(entry_id), fields) for entry_id, fields in reply]


def row_ids(html: str) -> list[str]:
    return re.findall(r'<tr data-id="([^"]+)"', html)


async def audit_of(settings: Settings) -> list[Any]:
    client = async_redis(settings)
    try:
        return await read_audit(client, settings.names, limit=50)
    finally:
        await client.aclose()


async def test_the_filter_is_the_url_and_lists_what_the_api_lists(
    http: httpx.AsyncClient, sync_client: redis.Redis, settings: Settings
) -> None:
    # given a dead letter of the validator and one of the persister (another family)
    names = settings.names
    gpu, persisted = dead(
        sync_client,
        settings,
        letter(settings),
        letter(
            settings, errors=["persist_rejected:dup"], stage="persister", source_stream=names.valid
        ),
    )
    # when the console is opened with no filter, then both are listed, newest first
    assert row_ids((await http.get("/ui/dead-letters")).text) == [persisted, gpu]
    # and a filter in the URL lists what the JSON API lists for it
    for query, expected in [
        ("family=invalid_reason_code", [gpu]),
        ("code=persist_rejected:dup", [persisted]),
        ("stage=persister", [persisted]),
        ("source=events", [gpu]),
        ("since=1h&family=persist_rejected", [persisted]),
        ("before=1h", []),
        ("reason=persist_rejected", [persisted]),
        ("reason=invalid_reason_code:training_gpu_on_fire", [gpu]),
    ]:
        page = await http.get(f"/ui/dead-letters?{query}")
        assert page.status_code == 200, query
        assert row_ids(page.text) == expected, query
        api = (await http.get(f"/api/dead-letters?{_api(query)}")).json()["items"]
        assert [item["id"] for item in reversed(api)] == expected, query
    # and the page opened fresh shows the same filter in its form and its live tail's URL
    fresh = (await http.get("/ui/dead-letters?stage=persister&since=15m")).text
    assert '<option value="persister" selected>' in fresh
    assert 'name="since" value="15m"' in fresh
    assert 'sse-connect="/ui/dead-letters/events?stage=persister&amp;since=15m&amp;after=' in fresh


def _api(query: str) -> str:
    """The console's URL filter as the JSON API spells it (families and codes are reasons)."""
    return query.replace("family=", "reason=").replace("code=", "reason=")


async def test_an_htmx_filter_change_gets_the_results_only(
    http: httpx.AsyncClient, sync_client: redis.Redis, settings: Settings
) -> None:
    dead(sync_client, settings, letter(settings))
    part = await http.get(
        "/ui/dead-letters?family=invalid_reason_code", headers={"HX-Request": "true"}
    )
    assert part.text.startswith('<section id="dl-results"') and "<html" not in part.text
    restore = await http.get(
        "/ui/dead-letters", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
    )
    assert "<html" in restore.text


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("family=false", "invalid_reason_filter"),
        ("code=%3Cscript%3E", "invalid_reason_filter"),
        ("stage=nowhere", "invalid_stage_filter"),
        ("source=dead", "invalid_source_filter"),
        ("since=soon", "invalid_parameter"),
        ("before_id=x", "invalid_stream_id"),
        ("family=" + "a_b" * 100, "invalid_request"),
    ],
)
async def test_a_bad_filter_is_a_422_page(http: httpx.AsyncClient, query: str, code: str) -> None:
    page = await http.get(f"/ui/dead-letters?{query}")
    assert page.status_code == 422 and page.headers["content-type"].startswith("text/html")
    assert f'data-error="{code}"' in page.text


async def test_a_bad_id_is_a_422_page_and_an_unknown_one_a_404_page(
    http: httpx.AsyncClient,
) -> None:
    for bad in ("not-an-id", "99999999999999999999-0", "1-0x", "4096:1-0"):
        page = await http.get(f"/ui/dead-letters/{bad}")
        assert page.status_code == 422, bad
        assert 'data-error="invalid_stream_id"' in page.text and "<html" in page.text
    for unknown in ("1-0", "0:1-0", "3:1-0"):
        page = await http.get(f"/ui/dead-letters/{unknown}")
        assert page.status_code == 404, unknown
        assert 'data-error="dead_letter_not_found"' in page.text


async def test_one_dead_letter_in_full_with_its_bytes_as_text_and_hex(
    http: httpx.AsyncClient, sync_client: redis.Redis, settings: Settings
) -> None:
    # given a dead letter whose original is not UTF-8, with another field beside __data__
    original = b'{"x": "\xc0\xaf"}'
    (entry,) = dead(
        sync_client,
        settings,
        letter(
            settings,
            errors=["malformed_json", "schema_violation:ts"],
            original=original,
            # a name that was not UTF-8 (b"tr\xffce", as the codec reads it back)
            original_fields={"trace": b"\xff\xfe", "tr\udcffce": b"1"},
            delivery_count=3,
            source_id="1700000000123-4",
        ),
    )
    # when its page is opened
    page = await http.get(f"/ui/dead-letters/{entry}")
    assert page.status_code == 200
    html = page.text
    # then every error code, its stage, source entry, deliveries and taxonomy version show
    for fact in ("malformed_json", "schema_violation:ts", "1700000000123-4", "tax-1"):
        assert fact in html, fact
    assert '<dd id="dl-deliveries">3</dd>' in html
    assert f'<code id="dl-source-stream">{settings.names.events}</code>' in html
    # and the bytes are exact in hex, said not to be UTF-8, and shown as text with marks
    assert "7b 22 78 22 3a 20 22 c0 af 22 7d" in html and 'id="dl-not-utf8"' in html
    assert "\ufffd" in html
    assert "(base64: not UTF-8)" in html and "//4=" in html
    # and the name that was not UTF-8 shows its byte as the API gives it, said to be escaped
    assert '<code>tr\\xffce</code> <span class="muted">(name escaped:' in html


async def test_a_hostile_dead_letter_renders_inert(
    http: httpx.AsyncClient, sync_client: redis.Redis, settings: Settings
) -> None:
    # given a dead letter whose every text is hostile: script tags, an RTL override, a NUL
    (entry,) = dead(
        sync_client,
        settings,
        letter(
            settings,
            errors=[f"schema_violation:{HOSTILE}"],
            message=HOSTILE,
            original=HOSTILE.encode(),
            hint={"summary": HOSTILE, HOSTILE: HOSTILE},
            source_id=HOSTILE,
        ),
    )
    for path in ("/ui/dead-letters", f"/ui/dead-letters/{entry}"):
        html = (await http.get(path)).text
        # then no markup of it survives and the invisible characters show as marks
        assert "<script>alert" not in html, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, path
        assert "\u202e" not in html and "\x00" not in html, path
        assert "\\u202eevil\\u0000end" in html, path


async def test_without_a_token_there_are_no_write_controls_and_writes_are_403(
    http: httpx.AsyncClient, sync_client: redis.Redis, settings: Settings
) -> None:
    (entry,) = dead(sync_client, settings, letter(settings))
    html = (await http.get("/ui/dead-letters")).text + (
        await http.get(f"/ui/dead-letters/{entry}")
    ).text
    assert 'name="id"' not in html and "Redrive" not in html and "Purge" not in html
    for path in WRITES:
        reply = await http.post(path, data={"scope": "selected", "id": entry})
        assert reply.status_code == 403 and 'data-error="read_only"' in reply.text, path
    assert sync_client.xlen(settings.names.dead) == 1


WRITES = (
    "/ui/dead-letters/redrive/preview",
    "/ui/dead-letters/redrive",
    "/ui/dead-letters/purge/preview",
    "/ui/dead-letters/purge",
)


async def test_writes_need_a_session_and_its_csrf_token(
    make_client: MakeClient, sync_client: redis.Redis, settings: Settings
) -> None:
    (entry,) = dead(sync_client, settings, letter(settings))
    anonymous = await make_client(api_token=TOKEN)
    client, csrf = await signed_in(make_client)
    for path in WRITES:
        reply = await anonymous.post(path, data={"scope": "selected", "id": entry})
        assert reply.status_code == 403 and 'data-error="login_required"' in reply.text, path
        forged = await client.post(path, data={"scope": "selected", "id": entry, "csrf": "x"})
        assert forged.status_code == 403 and 'data-error="csrf_failed"' in forged.text, path
        bare = await client.post(path, data={"scope": "selected", "id": entry})
        assert bare.status_code == 403 and 'data-error="csrf_failed"' in bare.text, path
    assert sync_client.xlen(settings.names.dead) == 1
    assert sync_client.xlen(settings.names.events) == 0
    assert await audit_of(settings) == []
    del csrf


async def test_a_redrive_preview_moves_nothing_and_its_confirmation_moves_the_previewed_one(
    make_client: MakeClient, sync_client: redis.Redis, settings: Settings
) -> None:
    # given two dead letters and a signed-in operator
    names = settings.names
    first, second = dead(sync_client, settings, letter(settings), letter(settings))
    client, csrf = await signed_in(make_client)
    page = (await client.get("/ui/dead-letters")).text
    assert f'name="id" value="{first}"' in page and 'id="dl-redrive-selected"' in page
    # when they preview a redrive of the first one (as htmx posts it)
    headers = {"X-CSRF-Token": csrf, "HX-Request": "true"}
    form = {"scope": "selected", "id": first}
    preview = await client.post("/ui/dead-letters/redrive/preview", data=form, headers=headers)
    # then the panel says how many and which, and nothing moved (the dry run is audited)
    assert preview.status_code == 200 and preview.text.startswith('<div class="card dl-panel"')
    assert "<strong>1</strong> dead letter would go back" in preview.text
    assert re.findall(r"<li>([^<]+)</li>", preview.text) == [first]
    assert f'name="carried" value="{first}"' in preview.text
    assert sync_client.xlen(names.dead) == 2 and sync_client.xlen(names.events) == 0
    assert [(a.action, a.dry_run, a.matched) for a in await audit_of(settings)] == [
        ("redrive", True, 1)
    ]
    # when they confirm, carrying what the preview showed
    done = await client.post(
        "/ui/dead-letters/redrive", headers=headers, data=form | {"carried": first}
    )
    # then exactly that one is back on its partition's incoming stream, and one record says so
    assert done.status_code == 200 and "<strong>1</strong> moved back" in done.text
    assert [i for i, _ in entries(sync_client, names.dead)] == [second]
    ((_, fields),) = entries(sync_client, names.events)
    assert fields[REDRIVEN_FROM_FIELD].decode() == first
    real = [a for a in await audit_of(settings) if not a.dry_run]
    assert [(a.action, a.operator, a.count, a.filter) for a in real] == [
        ("redrive", "ada", 1, {"ids": [first]})
    ]
    assert f'<code id="dl-audit-id">{real[0].id}</code>' in done.text
    # and the audit log shows it
    audit = (await client.get("/ui/dead-letters/audit")).text
    assert f'<tr data-id="{real[0].id}" data-action="redrive" data-dry-run="no">' in audit


async def test_a_redrive_of_the_filter_takes_the_librarys_guard(
    make_client: MakeClient, sync_client: redis.Redis, settings: Settings
) -> None:
    dead(sync_client, settings, letter(settings), letter(settings, errors=["malformed_json"]))
    client, csrf = await signed_in(make_client)
    headers = {"X-CSRF-Token": csrf}
    # an empty filter is refused, unless the operator says they mean every dead letter
    empty = await client.post(
        "/ui/dead-letters/redrive/preview", data={"scope": "filter"}, headers=headers
    )
    assert empty.status_code == 422 and 'data-error="redrive_filter_required"' in empty.text
    everything = await client.post(
        "/ui/dead-letters/redrive/preview", data={"scope": "filter", "all": "1"}, headers=headers
    )
    assert "<strong>2</strong> dead letters would go back" in everything.text
    # a filter previews its matches; the confirmation (a plain form post: a page) moves them
    form = {"scope": "filter", "family": "malformed_json"}
    preview = await client.post("/ui/dead-letters/redrive/preview", data=form, headers=headers)
    assert "<strong>1</strong> dead letter would go back" in preview.text
    carried = re.findall(r'name="carried" value="([^"]+)"', preview.text)
    done = await client.post(
        "/ui/dead-letters/redrive", data=form | {"carried": carried, "csrf": csrf}
    )
    assert (
        done.status_code == 200 and "<html" in done.text and "<strong>1</strong> moved" in done.text
    )
    assert sync_client.xlen(settings.names.events) == 1
    real = [a for a in await audit_of(settings) if not a.dry_run]
    assert [a.filter for a in real] == [{"reasons": ["malformed_json"]}]


async def test_a_purge_needs_an_age_or_ids_previews_and_deletes_the_previewed(
    make_client: MakeClient, sync_client: redis.Redis, settings: Settings
) -> None:
    old_ms = int((datetime.now(UTC) - timedelta(days=2)).timestamp() * 1000)
    (old,) = dead(sync_client, settings, letter(settings), at_ms=old_ms)
    (new,) = dead(sync_client, settings, letter(settings))
    client, csrf = await signed_in(make_client)
    headers = {"X-CSRF-Token": csrf}
    refused = await client.post(
        "/ui/dead-letters/purge/preview",
        data={"scope": "filter", "family": "invalid_reason_code"},
        headers=headers,
    )
    assert refused.status_code == 422 and "a purge needs an age" in refused.text
    form = {"scope": "filter", "before": "1d"}
    preview = await client.post("/ui/dead-letters/purge/preview", data=form, headers=headers)
    assert "<strong>1</strong> dead letter" in preview.text and "deleted for good" in preview.text
    assert sync_client.xlen(settings.names.dead) == 2 and await audit_of(settings) == []
    done = await client.post(
        "/ui/dead-letters/purge", headers=headers, data=form | {"carried": old}
    )
    assert "<strong>1</strong> deleted" in done.text
    assert [i for i, _ in entries(sync_client, settings.names.dead)] == [new]
    assert [(a.action, a.count, a.filter) for a in await audit_of(settings)] == [
        ("purge", 1, {"before_s": 86400.0})
    ]


async def test_older_pages_carry_the_filter_and_stop_the_live_tail(
    http: httpx.AsyncClient, sync_client: redis.Redis, settings: Settings
) -> None:
    # given more matching dead letters than one page holds
    start_ms = int(datetime.now(UTC).timestamp() * 1000) - 60_000
    ids = dead(sync_client, settings, *[letter(settings)] * (PAGE_SIZE + 2), at_ms=start_ms)
    first = (await http.get("/ui/dead-letters?family=invalid_reason_code")).text
    assert row_ids(first) == ids[::-1][:PAGE_SIZE]
    older = re.search(r'<a id="dl-older" href="([^"]+)"', first)
    assert older is not None
    link = older.group(1).replace("&amp;", "&")
    assert link == f"/ui/dead-letters?family=invalid_reason_code&before_id={ids[2]}"
    # when the older page is opened, then it lists the rest, and no live tail runs there
    rest = (await http.get(link)).text
    assert row_ids(rest) == [ids[1], ids[0]]
    assert 'id="dl-paging"' in rest and "sse-connect" not in rest and 'id="dl-older"' not in rest


async def test_the_live_tail_refuses_a_bad_position_before_it_streams(
    http: httpx.AsyncClient,
) -> None:
    for headers, query in [({}, "after=x"), ({"Last-Event-ID": "1-0; DROP"}, ""),
                           ({}, "family=false")]:  # fmt: skip
        reply = await http.get(f"/ui/dead-letters/events?{query}", headers=headers)
        assert reply.status_code == 422, (headers, query)
        assert reply.headers["content-type"].startswith("text/html")
