"""The version of a cached document is read from its head (`services.coach.reads`), where the
coach's write script puts it; any other head means "read it whole"."""

from __future__ import annotations

from services.coach import logic
from services.coach.io import DocumentTemplate, StageResult
from services.coach.reads import HEAD_BYTES, Cached, head_version, project_body, served
from shared.models import COACH_STAGES, CoachDocument
from tests.unit.coach.test_documents import NOW, results


def stored(result: StageResult, version: int) -> bytes:
    """The bytes the write script stores for `result` at `version`."""
    head, tail = DocumentTemplate("tx-1", NOW).parts(result, logic.dumped(result.suggestions))
    return head + str(version).encode() + tail


def test_every_written_document_names_its_version_within_the_head_bytes() -> None:
    for result in results():
        for version in (1, 42, 10**20 - 1):
            raw = stored(result, version)
            assert head_version(raw[:HEAD_BYTES], result.project_id, result.stage) == version
            assert served(raw, result.project_id, result.stage) == Cached(version, raw)


def test_the_longest_head_fits() -> None:
    longest = max(COACH_STAGES, key=len)
    result = StageResult(2**63 - 1, longest, 1, [], None)
    raw = stored(result, 10**20 - 1)
    assert head_version(raw[:HEAD_BYTES], 2**63 - 1, longest) == 10**20 - 1


def test_a_head_of_another_document_or_form_tells_nothing() -> None:
    raw = stored(StageResult(7, "eval", 1, [], None), 3)
    assert head_version(raw, 8, "eval") is None
    assert head_version(raw, 7, "data") is None
    assert head_version(b'{"project_id": 7, "stage": "eval", "version": 3, ', 7, "eval") is None
    assert head_version(b'{"version":3,"project_id":7,"stage":"eval",', 7, "eval") is None
    assert head_version(b"", 7, "eval") is None


def test_another_form_is_served_as_its_validated_model() -> None:
    raw = stored(StageResult(7, "eval", 1, [], "1-0"), 3)
    spaced = CoachDocument.model_validate_json(raw).model_dump_json(indent=2).encode()
    assert served(spaced, 7, "eval") == Cached(3, raw)


def test_the_project_body_puts_the_stored_bytes_under_their_stages() -> None:
    docs = {"data": Cached(1, b'{"a":1}'), "eval": Cached(2, b'{"b":"\\u0000"}')}
    assert (
        project_body(9, docs)
        == b'{"project_id":9,"stages":{"data":{"a":1},"eval":{"b":"\\u0000"}}}'
    )
