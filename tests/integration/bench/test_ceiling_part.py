"""The benchmark's store-ceiling part on a tiny workload, against the real SQLite and
PostgreSQL, so it cannot rot: every measurement inserts every row, in a fresh file or schema."""

from __future__ import annotations

import dataclasses
from typing import Any

import asyncpg
import pytest

from bench import ceiling, ceiling_sql
from bench.env import POSTGRES_URL, Workspace
from bench.plan import Plan

pytestmark = pytest.mark.integration

TINY = dataclasses.replace(Plan.small(), ceiling_rows=2_500, ceiling_variant_rows=1_000)


@pytest.fixture(scope="module")
def result() -> Any:
    ws = Workspace()
    try:
        found = ceiling.run(ws, TINY)
    finally:
        ws.clean()  # before the tests: the last one checks that nothing is left
    return found, ws.run_id


def test_both_backends_insert_every_row_of_the_real_schema_and_the_lean_table(
    result: Any,
) -> None:
    found, _ = result
    for backend in ("sqlite", "postgres"):
        for table in ("schema", "today", "lean"):
            doc = found[backend][table]
            assert doc["rows"] == 2_500 and doc["rows_s"] > 0, (backend, table, doc)
            assert 0 < doc["batch_p50_ms"] <= doc["batch_p99_ms"]
        assert found[backend]["prepare_us_per_row"] > 0


def test_every_variant_is_measured_on_both_backends(result: Any) -> None:
    found, _ = result
    tags = {tag for _, tag in ceiling_sql.ORDER}
    for backend in ("sqlite", "postgres"):
        variants = found[backend]["variants"]
        assert set(variants) == tags
        assert all(v["rows"] == 1_000 and v["rows_s"] > 0 for v in variants.values()), variants


async def test_the_run_leaves_no_schema_or_file_behind(result: Any) -> None:
    _, run_id = result
    assert not Workspace(run_id=run_id).directory.exists()
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        left = await conn.fetchval(
            "SELECT count(*) FROM pg_namespace WHERE nspname LIKE $1", f"bench_{run_id}_%"
        )
    finally:
        await conn.close()
    assert left == 0
