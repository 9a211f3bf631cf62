"""Stories of the dead-letter and status endpoints (what `runbus dlq` / `status` show)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import orjson
import pytest
import redis

from shared.settings import Settings
from tests.integration.validator.helpers import good_event, route, xadd_raw

pytestmark = pytest.mark.integration


async def dead_letter_some(sync_client: redis.Redis, settings: Settings) -> list[str]:
    """Publish two invalid and one valid entry and let the real validator route them."""
    bodies = [
        orjson.dumps(good_event(severity="error", reason_code="training_gpu_on_fire")),
        b"{not json",
        orjson.dumps(good_event()),
    ]
    ids = xadd_raw(sync_client, settings.names.events, bodies)
    await route(sync_client, settings, 3)
    return ids


async def test_dead_letters_are_listed_with_reasons_and_filtered(
    http: httpx.AsyncClient, sync_client: redis.Redis, settings: Settings
) -> None:
    # given two dead letters: an unknown reason code and malformed JSON
    ids = await dead_letter_some(sync_client, settings)
    # when ops list them, then both come with every error code and their source entry
    page = (await http.get("/api/dead-letters")).json()
    assert [item["source_id"] for item in page["items"]] == ids[:2]
    assert page["items"][0]["errors"] == ["invalid_reason_code:training_gpu_on_fire"]
    assert page["items"][1]["errors"] == ["malformed_json"]
    # and a reason filter (a code family) keeps only the matching one
    only = (await http.get("/api/dead-letters?reason=invalid_reason_code")).json()["items"]
    assert [item["source_id"] for item in only] == ids[:1]
    # and one dead letter can be read in full, the original bytes unchanged
    one = await http.get(f"/api/dead-letters/{page['items'][1]['id']}")
    assert one.status_code == 200 and one.json()["original"] == "{not json"
    # and the stats count them by family
    stats = (await http.get("/api/dead-letters/stats")).json()
    assert stats["length"] == 2
    assert {c["key"]: c["count"] for c in stats["by_family"]} == {
        "invalid_reason_code": 1, "malformed_json": 1,
    }  # fmt: skip


async def test_unknown_dead_letter_is_404_and_bad_ids_422(http: httpx.AsyncClient) -> None:
    missing = await http.get("/api/dead-letters/1-0")
    assert missing.status_code == 404 and missing.json()["error"] == "dead_letter_not_found"
    # a path segment that is no id at all names no resource: 404 (so /redrive and /stats are
    # never taken for ids)
    assert (await http.get("/api/dead-letters/abc")).status_code == 404
    for path in ("/api/dead-letters?after_id=x",
                 "/api/dead-letters?since=soon", "/api/dead-letters?limit=0"):  # fmt: skip
        response = await http.get(path)
        assert response.status_code == 422, path
        assert "error" in response.json()


async def test_redrive_needs_a_filter_and_moves_matches_back(
    http: httpx.AsyncClient, sync_client: redis.Redis, settings: Settings
) -> None:
    # given two dead letters
    await dead_letter_some(sync_client, settings)
    before = sync_client.xlen(settings.names.events)
    # when a redrive names no filter, it is refused
    assert (await http.post("/api/dead-letters/redrive", json={})).status_code == 422
    # when it names a reason, a dry run counts and moves nothing
    dry = await http.post(
        "/api/dead-letters/redrive", json={"reasons": ["malformed_json"], "dry_run": True}
    )
    assert dry.status_code == 200 and dry.json()["matched"] == 1 and dry.json()["moved"] == 0
    # and the real run moves exactly that one back to the incoming stream
    done = await http.post("/api/dead-letters/redrive", json={"reasons": ["malformed_json"]})
    assert done.status_code == 200 and done.json()["moved"] == 1
    assert sync_client.xlen(settings.names.events) == before + 1
    assert sync_client.xlen(settings.names.dead) == 1


def unescape(name: str) -> bytes:
    r"""An escaped field name back to its bytes (``\\`` a backslash, ``\xNN`` one byte)."""
    out, i, raw = bytearray(), 0, name.encode()
    while i < len(raw):
        if raw[i : i + 2] == b"\\\\":
            out, i = out + b"\\", i + 2
        elif raw[i : i + 2] == b"\\x":
            out, i = out + bytes([int(raw[i + 2 : i + 4], 16)]), i + 4
        else:
            out, i = out + raw[i : i + 1], i + 1
    return bytes(out)


async def test_a_field_name_that_is_not_utf8_is_given_losslessly(
    http: httpx.AsyncClient, sync_client: redis.Redis, settings: Settings
) -> None:
    # given an incoming entry with field names that are not UTF-8 (or hold a backslash) beside
    # its body, dead-lettered by the real validator
    names = settings.names
    odd = {b"tr\xffce": b"1", b"a\\x41\xfe": b"2", b"\\": b"3", b"plain": b"4"}
    sync_client.xadd(names.events, {b"__data__": b"{not json", **odd})  # type: ignore[dict-item]
    await route(sync_client, settings, 1)
    ((dead_id, _),) = sync_client.xrange(names.dead)
    # when the dead letter is read over HTTP
    reply = await http.get(f"/api/dead-letters/{dead_id.decode()}")
    assert reply.status_code == 200
    body = reply.json()
    # then no name is replaced: the escaped ones are listed and read back as the exact bytes
    assert "\ufffd" not in reply.text
    fields = body["original_fields"]
    assert set(body["original_fields_escaped"]) == {"tr\\xffce", "a\\\\x41\\xfe", "\\\\"}
    assert {unescape(n) if n in body["original_fields_escaped"] else n.encode(): v.encode()
            for n, v in fields.items()} == odd  # fmt: skip
    # and the document describes the field
    openapi = (await http.get("/openapi.json")).json()
    record = openapi["components"]["schemas"]["DeadLetterRecord"]["properties"]
    assert "original_fields_escaped" in record


async def test_status_shows_streams_groups_and_lag(
    http: httpx.AsyncClient, sync_client: redis.Redis, settings: Settings
) -> None:
    # given routed entries and one more waiting for the validator
    await dead_letter_some(sync_client, settings)
    xadd_raw(sync_client, settings.names.events, [orjson.dumps(good_event())])
    # when the status is read
    body = (await http.get("/api/status")).json()
    # then each stream is there, and the validator group shows one entry of lag
    streams = {s["role"]: s for s in body["streams"]}
    assert set(streams) == {"events", "valid", "dead"}
    validator = next(g for g in streams["events"]["groups"] if g["name"] == "validator")
    assert validator["lag"] == 1 and validator["pending"] == 0
    assert body["dead_letters"] == 2


async def test_status_shows_the_actions_stream_and_the_platform_group(
    http: httpx.AsyncClient, sync_client: redis.Redis, settings: Settings
) -> None:
    # given one action request the platform's group has not read yet
    names = settings.names
    sync_client.xadd(names.actions, {b"__data__": b"{}"})
    sync_client.xgroup_create(names.actions, "platform", id="0")
    # when the status is read
    body = (await http.get("/api/status")).json()
    # then the outlet is there with its length and the group's lag
    (actions,) = body["outlets"]
    assert (actions["role"], actions["name"], actions["length"]) == ("actions", names.actions, 1)
    assert [(g["name"], g["lag"], g["pending"]) for g in actions["groups"]] == [("platform", 1, 0)]


async def test_purge_needs_an_age_or_ids_and_every_change_is_in_the_audit_log(
    make_client: Callable[..., Awaitable[httpx.AsyncClient]],
    sync_client: redis.Redis,
    settings: Settings,
) -> None:
    # given two dead letters, and an API with a token and an operator
    await dead_letter_some(sync_client, settings)
    http = await make_client(api_token="t0k", operator="ana")
    auth = {"Authorization": "Bearer t0k"}
    # when a purge bounds nothing, it is refused and deletes nothing
    refused = await http.post(
        "/api/dead-letters/purge", json={"reasons": ["malformed_json"]}, headers=auth
    )
    assert refused.status_code == 422 and refused.json()["error"] == "purge_filter_required"
    # and without the token it is 401
    assert (await http.post("/api/dead-letters/purge", json={"before": "0s"})).status_code == 401
    assert sync_client.xlen(settings.names.dead) == 2
    # when it names a reason and an age, exactly the matching one is deleted
    done = await http.post(
        "/api/dead-letters/purge",
        json={"reasons": ["malformed_json"], "before": "0s"},
        headers=auth,
    )
    assert done.status_code == 200 and (done.json()["matched"], done.json()["deleted"]) == (1, 1)
    assert sync_client.xlen(settings.names.dead) == 1
    # then the audit log shows it, newest first, with who did it (a dry-run redrive too)
    await http.post("/api/dead-letters/redrive", json={"all": True, "dry_run": True}, headers=auth)
    log = (await http.get("/api/dead-letters/audit?limit=5", headers=auth)).json()["records"]
    assert [(r["action"], r["operator"], r["dry_run"]) for r in log] == [
        ("redrive", "ana", True), ("purge", "ana", False)
    ]  # fmt: skip
    assert log[1]["id"] == done.json()["audit_id"] and log[1]["count"] == 1
    refused = await http.get("/api/dead-letters/audit?limit=0")
    assert refused.status_code == 422
    # the CLI's code and message for the same rule (`runbus dlq audit -n 0`)
    assert refused.json() == {
        "error": "invalid_parameter",
        "message": "limit must be between 1 and 1000",
        "field": "limit",
    }
