"""The cache document's bytes: what the write script stores, built from a batch's template."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from services.coach import logic
from services.coach.io import DocumentTemplate, StageResult
from shared.models import COACH_STAGES, CoachDocument
from tests.unit.coach.builders import state_of
from tests.unit.coach.cases import CASES

NOW = datetime(2026, 6, 1, 12, 30, 1, 250_000, tzinfo=UTC)


def reference_parts(result: StageResult, taxonomy_version: str) -> tuple[bytes, bytes]:
    """The document split around its version, from a model of its own (one per document)."""
    doc = CoachDocument(
        project_id=result.project_id, stage=result.stage, version=0, computed_at=NOW,
        source_id=result.source_id, taxonomy_version=taxonomy_version,
        suggestions=result.suggestions,
    ).model_dump(mode="json")  # fmt: skip
    head = orjson.dumps({"project_id": doc["project_id"], "stage": doc["stage"]})
    rest = {k: v for k, v in doc.items() if k not in ("project_id", "stage", "version")}
    return head[:-1] + b',"version":', b"," + orjson.dumps(rest)[1:]


def results() -> list[StageResult]:
    raised = state_of([ev for case in CASES for ev in case.raise_(7)])
    found = []
    for i, stage in enumerate(COACH_STAGES):
        for state in (raised, {}):
            source = None if i % 2 else f"17000000000{i}-{i}"
            found.append(StageResult(7 + i, stage, i, logic.suggest(stage, state), source))
    return found


def test_every_document_has_the_bytes_of_its_own_model() -> None:
    template = DocumentTemplate("tx-1", NOW)
    assert any(r.suggestions for r in results()) and any(not r.suggestions for r in results())
    for result in results():
        docs = logic.dumped(result.suggestions)
        head, tail = template.parts(result, docs)
        assert (head, tail) == reference_parts(result, "tx-1")
        assert logic.digest_of(docs) == logic.digest(result.suggestions)
        stored = CoachDocument.model_validate_json(head + b"3" + tail)
        assert stored.version == 3 and stored.suggestions == result.suggestions
