"""The redrive / purge summary never cuts reason families silently."""

from __future__ import annotations

from services.ops.models import Count, Selection
from services.ops.render import families_text, selection_summary


def test_every_family_is_named_up_to_the_limit() -> None:
    counts = [Count(key=f"f{n}", count=10 - n) for n in range(4)]
    assert families_text(counts, limit=4) == "f0 10, f1 9, f2 8, f3 7"


def test_families_past_the_limit_are_counted() -> None:
    counts = [Count(key=f"f{n}", count=1) for n in range(13)]
    text = selection_summary(Selection(ids=["1-0"] * 13, by_family=counts), limit=10)
    assert text.startswith("13 dead letters match (f0 1, ")
    assert "f9 1, and 3 more families (see runbus dlq stats))" in text
    assert "f10" not in text
