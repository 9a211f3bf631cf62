"""Archived dead letters are still found: `runbus dlq show`, the HTTP API and the dashboard
read them from the archive, and a redrive by id sends each from there once."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import httpx
import orjson
import pytest
import redis

from services.history import open_store
from services.persister.retention import Retention
from shared.connections import async_redis
from shared.settings import Settings
from shared.wire import ORIGIN_ID_FIELD, REDRIVEN_FROM_FIELD
from tests.integration.api.conftest import make_client  # noqa: F401  (fixture)
from tests.integration.api.test_ui_access import signed_in
from tests.integration.history.conftest import in_thread
from tests.integration.ops.conftest import AddDead, Cli, entries

Archived = tuple[list[str], list[str]]


async def _retire(settings: Settings) -> None:
    """One retention sweep keeping two dead letters on the stream, into a migrated history."""
    store = open_store(settings)
    client = async_redis(settings)
    try:
        await store.open()
        await store.migrate()
        tuned = settings.model_copy(update={"dead_letter_max_entries": 2})
        done = await Retention(client, store, tuned).once()
    finally:
        await client.aclose()
        await store.close()
    assert (done.archived, done.expired) == (3, 3)


@pytest.fixture
def archived(add_dead: AddDead, settings: Settings) -> Archived:
    """Five dead letters, the three oldest archived and trimmed by retention: (gone, kept)."""
    ids = [add_dead([f"invalid_reason_code:c{n}"], source_id=f"17-{n}") for n in range(5)]
    in_thread(lambda: _retire(settings))
    return ids[:3], ids[3:]


def test_dlq_show_finds_an_archived_dead_letter(
    archived: Archived, cli: Cli, sync_client: redis.Redis, settings: Settings
) -> None:
    gone, kept = archived
    assert [i for i, _ in entries(sync_client, settings.names.dead)] == kept
    shown = cli("dlq", "show", gone[0])
    assert shown.exit_code == 0, shown.output
    assert "invalid_reason_code:c0" in shown.output and "archived_at" in shown.output
    doc = orjson.loads(cli("dlq", "show", gone[1], "--json").output)
    assert doc["id"] == gone[1] and doc["archived_at"] and not doc["archive_redriven"]
    assert doc["source_id"] == "17-1"
    on_stream = orjson.loads(cli("dlq", "show", kept[0], "--json").output)
    assert on_stream["archived_at"] is None
    missing = cli("dlq", "show", "1700000000000-0")
    assert missing.exit_code == 1 and "no dead letter" in missing.output


def test_a_redrive_by_id_sends_an_archived_letter_once(
    archived: Archived, cli: Cli, sync_client: redis.Redis, settings: Settings
) -> None:
    gone, kept = archived
    result = cli("dlq", "redrive", "--ids", f"{gone[0]},{kept[0]}", "--yes", "--rate", "0")
    assert result.exit_code == 0, result.output
    assert "moved 2" in result.output
    sent = entries(sync_client, settings.names.events)
    assert sorted(f[REDRIVEN_FROM_FIELD].decode() for _, f in sent) == sorted([gone[0], kept[0]])
    assert {f[ORIGIN_ID_FIELD] for _, f in sent} == {b"17-0", b"17-3"}
    again = cli("dlq", "redrive", "--ids", gone[0], "--yes")
    assert "moved 0" in again.output
    assert len(entries(sync_client, settings.names.events)) == 2
    doc = orjson.loads(cli("dlq", "show", gone[0], "--json").output)
    assert doc["archive_redriven"] is True


async def test_the_api_and_the_dashboard_read_the_archive(
    archived: Archived,
    make_client: Callable[..., Awaitable[httpx.AsyncClient]],  # noqa: F811
    sync_client: redis.Redis,
    settings: Settings,
) -> None:
    gone, _ = archived
    http = await make_client()
    record = await http.get(f"/api/dead-letters/{gone[0]}")
    assert record.status_code == 200, record.text
    assert record.json()["archived_at"] is not None
    page = await http.get(f"/ui/dead-letters/{gone[0]}")
    assert page.status_code == 200 and 'id="dl-archived"' in page.text
    moved = await http.post("/api/dead-letters/redrive", json={"ids": [gone[1]]})
    assert moved.status_code == 200, moved.text
    assert moved.json()["moved"] == 1
    assert len(entries(sync_client, settings.names.events)) == 1
    status = (await http.get("/api/status")).json()["retention"]
    assert (status["archived"], status["expired"], status["archive_entries"]) == (3, 3, 3)
    metrics = (await http.get("/metrics")).text
    assert "runbus_dead_letters_archived_total 3.0" in metrics
    assert "runbus_dead_letters_expired_total 3.0" in metrics
    assert "runbus_dead_letter_archive_entries 3.0" in metrics
    assert "runbus_dead_letter_retention_failing 0.0" in metrics


def test_a_redrive_by_filter_with_archived_sends_archived_letters_too_once(
    archived: Archived, cli: Cli, sync_client: redis.Redis, settings: Settings
) -> None:
    gone, kept = archived
    # given a filter matching only an archived letter: the streams alone have nothing
    alone = cli("dlq", "redrive", "--reason", "invalid_reason_code:c0", "--yes", "--rate", "0")
    assert alone.exit_code == 0, alone.output
    assert "moved 0" in alone.output
    # when the same filter asks for the archive too, after a dry run that lists all matched
    preview = cli("dlq", "redrive", "--reason", "invalid_reason_code", "--archived", "--dry-run")
    assert preview.exit_code == 0, preview.output
    assert all(i in preview.output for i in gone + kept)
    result = cli("dlq", "redrive", "--reason", "invalid_reason_code", "--archived", "--yes",
                 "--rate", "0")  # fmt: skip
    # then the three archived and the two on the stream are back, each once
    assert result.exit_code == 0, result.output
    assert "moved 5" in result.output
    sent = entries(sync_client, settings.names.events)
    assert sorted(f[REDRIVEN_FROM_FIELD].decode() for _, f in sent) == sorted(gone + kept)
    again = cli("dlq", "redrive", "--reason", "invalid_reason_code", "--archived", "--yes")
    assert "moved 0" in again.output
    assert len(entries(sync_client, settings.names.events)) == 5


async def test_the_apis_redrive_takes_archived(
    archived: Archived,
    make_client: Callable[..., Awaitable[httpx.AsyncClient]],  # noqa: F811
    sync_client: redis.Redis,
    settings: Settings,
) -> None:
    gone, _ = archived
    http = await make_client()
    body = {"reasons": ["invalid_reason_code:c1", "invalid_reason_code:c2"], "archived": True}
    dry = await http.post("/api/dead-letters/redrive", json=body | {"dry_run": True})
    assert dry.status_code == 200, dry.text
    assert (dry.json()["matched"], dry.json()["moved"]) == (2, 0)
    moved = await http.post("/api/dead-letters/redrive", json=body)
    assert moved.json()["moved"] == 2
    sent = entries(sync_client, settings.names.events)
    assert sorted(f[REDRIVEN_FROM_FIELD].decode() for _, f in sent) == sorted(gone[1:])
    # a purge never takes the archive: the body is refused, not half-applied
    purge = await http.post("/api/dead-letters/purge", json={"before": "1s", "archived": True})
    assert purge.status_code == 422


async def test_the_dashboard_redrives_a_filter_with_its_archived_letters(
    archived: Archived,
    make_client: Callable[..., Awaitable[httpx.AsyncClient]],  # noqa: F811
    sync_client: redis.Redis,
    settings: Settings,
) -> None:
    gone, kept = archived
    client, csrf = await signed_in(make_client)
    headers = {"X-CSRF-Token": csrf}
    page = await client.get("/ui/dead-letters")
    assert 'id="dl-archived-too"' in page.text
    # the filter alone matches the two on the stream; with the box ticked, all five
    form = {"scope": "filter", "family": "invalid_reason_code"}
    alone = await client.post("/ui/dead-letters/redrive/preview", data=form, headers=headers)
    assert "<strong>2</strong> dead letters would go back" in alone.text
    form["archived"] = "1"
    preview = await client.post("/ui/dead-letters/redrive/preview", data=form, headers=headers)
    assert "<strong>5</strong> dead letters would go back" in preview.text
    assert 'name="archived" value="1"' in preview.text
    carried = re.findall(r'name="carried" value="([^"]+)"', preview.text)
    assert sorted(carried) == sorted(gone + kept)
    done = await client.post(
        "/ui/dead-letters/redrive", data=form | {"carried": carried}, headers=headers
    )
    assert "<strong>5</strong> moved" in done.text
    sent = entries(sync_client, settings.names.events)
    assert sorted(f[REDRIVEN_FROM_FIELD].decode() for _, f in sent) == sorted(gone + kept)


def test_dlq_prune_archive_removes_archived_letters_for_good(
    archived: Archived, cli: Cli, sync_client: redis.Redis, settings: Settings
) -> None:
    gone, kept = archived
    # a prune of what is older than a day finds nothing: they were archived just now
    kept_all = cli("dlq", "prune-archive", "--older-than", "1d", "--json")
    assert kept_all.exit_code == 0, kept_all.output
    assert orjson.loads(kept_all.output)["letters_deleted"] == 0
    assert cli("dlq", "show", gone[0]).exit_code == 0
    # older than nothing: the three archived are gone for good, the stream is untouched
    pruned = cli("dlq", "prune-archive", "--older-than", "0s")
    assert pruned.exit_code == 0, pruned.output
    assert "3 archived removed" in pruned.output
    assert cli("dlq", "show", gone[0]).exit_code == 1
    assert [i for i, _ in entries(sync_client, settings.names.dead)] == kept
    bad = cli("dlq", "prune-archive", "--older-than", "soon")
    assert bad.exit_code == 2
