"""``GET /metrics`` carries the API process's live subscriptions by topic."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from services.api.metrics import Snapshot, render


def _samples(body: bytes) -> dict[tuple[str, str], float]:
    return {
        (s.name, s.labels.get("topic", "")): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def test_subscribers_by_topic_even_while_redis_is_down() -> None:
    body = render(Snapshot(up=False, subscribers=(("coach", 2), ("status", 0))))
    found = _samples(body)
    assert found[("runbus_ui_subscribers", "coach")] == 2
    assert found[("runbus_ui_subscribers", "status")] == 0
    assert found[("runbus_redis_up", "")] == 0


def test_no_series_without_a_hub() -> None:
    assert b"runbus_ui_subscribers" not in render(Snapshot(up=False))
