"""Action requests built from a cached document: what the user saw, or a stable refusal; and
their wire form (``__data__`` = JSON, as on the other streams)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from pydantic import ValidationError

from services.coach.actions import (
    SuggestionChanged,
    SuggestionNotFound,
    build_request,
)
from shared.models import (
    ActionRequest,
    AugmentFromClusterAction,
    CoachDocument,
    NavigateAction,
    RunPlaybookAction,
    Suggestion,
)
from shared.wire import DATA_FIELD, action_fields, parse_action

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
TEMPLATE = "https://platform.example/projects/{project_id}/{target}"


def document(version: int = 3) -> CoachDocument:
    suggestions = [
        Suggestion(severity="critical", title="Training failed 2 times in a row", body="b",
                   action=NavigateAction(label="Open runs", params={"target": "runs"})),
        Suggestion(severity="warning", title="Your gold set has 78 rows", body="b",
                   action=RunPlaybookAction(label="Top up",
                                            params={"playbook": "gold", "rows": 22})),
        Suggestion(severity="info", title="Cluster “refunds”", body="b",
                   action=AugmentFromClusterAction(label="Augment", params={"cluster_id": "c-1"})),
    ]  # fmt: skip
    return CoachDocument(
        project_id=7, stage="eval", version=version, computed_at=NOW, source_id="1-0",
        taxonomy_version="tx", suggestions=suggestions,
    )  # fmt: skip


def build(index: int, version: int = 3, template: str | None = TEMPLATE) -> ActionRequest:
    return build_request(
        document(), version=version, index=index, who="ana", url_template=template, now=NOW
    )


def test_a_request_carries_what_the_user_saw() -> None:
    request = build(1)
    assert request.model_dump(exclude={"request_id"}) == {
        "who": "ana", "requested_at": NOW, "project_id": 7, "stage": "eval",
        "title": "Your gold set has 78 rows", "version": 3, "index": 1,
        "kind": "run_playbook", "label": "Top up", "params": {"playbook": "gold", "rows": 22},
        "url": None,
    }  # fmt: skip
    assert len(request.request_id) == 32 and request.request_id != build(1).request_id


def test_only_navigate_gets_a_url_from_the_template() -> None:
    assert build(0).url == "https://platform.example/projects/7/runs"
    assert build(0, template=None).url is None
    assert build(2).url is None and build(2).kind == "augment_from_cluster"


def test_another_version_is_refused_with_the_current_one() -> None:
    with pytest.raises(SuggestionChanged) as refused:
        build(0, version=2)
    assert refused.value.code == "suggestion_changed"
    assert refused.value.extra == {"version": 3}


@pytest.mark.parametrize("index", [3, 99])
def test_an_index_beyond_the_document_is_refused(index: int) -> None:
    with pytest.raises(SuggestionNotFound) as refused:
        build(index)
    assert refused.value.code == "suggestion_not_found"
    assert refused.value.extra == {"suggestion": str(index)}


def test_the_wire_form_is_one_data_field_of_json_and_reads_back() -> None:
    request = build(0)
    fields = action_fields(request)
    assert set(fields) == {DATA_FIELD}
    doc = orjson.loads(fields[DATA_FIELD])
    assert doc["requested_at"] == "2026-05-01T12:00:00Z" and doc["kind"] == "navigate"
    assert set(doc) == set(ActionRequest.model_fields)
    assert parse_action(fields) == request


def test_the_request_time_is_utc_whatever_the_zone_given() -> None:
    paris = datetime(2026, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    request = build(0).model_copy(update={"requested_at": paris})
    again = ActionRequest.model_validate_json(request.model_dump_json())
    assert again.requested_at == NOW and again.requested_at.tzinfo == UTC


@pytest.mark.parametrize(
    "change",
    [{"kind": "delete_project"}, {"who": ""}, {"who": "x" * 257}, {"index": -1}, {"extra": 1}],
)
def test_the_model_refuses_what_is_not_a_request(change: dict[str, object]) -> None:
    body = {**build(0).model_dump(mode="json"), **change}
    with pytest.raises(ValidationError):
        ActionRequest.model_validate(body)


def test_every_field_is_described() -> None:
    assert all(f.description for f in ActionRequest.model_fields.values())
