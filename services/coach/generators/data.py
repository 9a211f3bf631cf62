"""Coach stage ``data``: dataset import and Adapter Studio activity.

Inputs (BrewSLM events of stages ``ingestion`` and ``adapter``):

- the latest import outcome (``data:import``), written by ``dataset_import_run`` (payload
  ``accepted``, ``rejected``, ``source``), ``dataset_import_failed`` / ``ingest_io_error``, and
  ``ingest_unsupported_format`` (payload ``format`` or ``extension``). The latest by event time
  wins, so a later successful import clears a failure;
- adapter failures ``adapter_schema_mismatch`` / ``adapter_field_resolution_failed`` (payload
  ``field``) against the latest adapter success (adapter info event, ``payload.status``
  completed);
- whether rows ever landed: ``dataset_import_run`` (unless ``accepted`` is 0),
  ``annotation_rows_promoted`` with ``rows`` > 0, ``distillation_teacher_capture``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from services.coach.facts import Fact, Seen, State, int_field, newer, text_field
from services.coach.generators.common import Severity, navigate, ordered, plural, with_summary
from shared.models import Suggestion

#: Share of rejected rows in the latest import that raises a warning / a critical.
REJECTED_SHARE_WARN: Final = 0.10
REJECTED_SHARE_CRITICAL: Final = 0.50

IMPORT_FAILURES: Final = frozenset({"dataset_import_failed", "ingest_io_error"})
UNSUPPORTED: Final = "ingest_unsupported_format"
ADAPTER_FAILURES: Final = frozenset({"adapter_schema_mismatch", "adapter_field_resolution_failed"})
ROW_SOURCES: Final = frozenset({"annotation_rows_promoted", "distillation_teacher_capture"})

#: BrewSLM stages whose events `facts` reads.
EVENT_STAGES: Final = frozenset({"ingestion", "adapter"})


def facts(seen: Seen) -> list[Fact]:
    """Import outcome, adapter outcome and rows-landed facts of one event."""
    stage = seen.event.stage
    if stage == "ingestion":
        return _ingestion_facts(seen)
    if stage == "adapter":
        if seen.code in ADAPTER_FAILURES:
            field = text_field(seen.payload, "field", "column")
            return [seen.fact("data:adapter_failed", seen.ref(code=seen.code, field=field))]
        if seen.success:
            return [seen.fact("data:adapter_ok", seen.ref())]
    return []


def _ingestion_facts(seen: Seen) -> list[Fact]:
    payload = seen.payload
    if seen.code == "dataset_import_run":
        accepted = int_field(payload, "accepted")
        rejected = int_field(payload, "rejected")
        source = text_field(payload, "source", "locator")
        value = seen.ref(outcome="ok", accepted=accepted, rejected=rejected, source=source)
        found = [seen.fact("data:import", value)]
        if accepted != 0:
            found.append(seen.fact("data:rows_landed"))
        return found
    if seen.code in IMPORT_FAILURES:
        return [seen.fact("data:import", seen.ref(outcome="failed", code=seen.code))]
    if seen.code == UNSUPPORTED:
        fmt = text_field(payload, "format", "extension")
        return [seen.fact("data:import", seen.ref(outcome="unsupported_format", format=fmt))]
    rows = int_field(payload, "rows")
    if seen.code in ROW_SOURCES and (seen.code != "annotation_rows_promoted" or (rows or 0) > 0):
        return [seen.fact("data:rows_landed")]
    return []


def suggest(state: State) -> list[Suggestion]:
    """Data-stage suggestions, most severe first."""
    found: list[Suggestion] = []
    last = state.get("data:import")
    if last is not None:
        found += _import_suggestions(last)
    failed = state.get("data:adapter_failed")
    if failed is not None and newer(failed, state.get("data:adapter_ok")):
        found.append(_adapter(failed))
    if "project:active" in state and "data:rows_landed" not in state:
        found.append(
            navigate(
                "info",
                "No data yet",
                "Nothing has been imported into this project. Import a dataset (or run a "
                "synthetic playbook) so the other stages have rows to work with.",
                "Import a dataset",
                target="data-import",
            )
        )
    return ordered(found)


def _import_suggestions(last: Fact) -> list[Suggestion]:
    by_outcome: dict[str, Callable[[dict[str, Any]], Suggestion | None]] = {
        "failed": _import_failed,
        "unsupported_format": _unsupported,
        "ok": _rejected,
    }
    build = by_outcome.get(str(last.value.get("outcome")))
    found = build(last.value) if build else None
    return [found] if found else []


def _import_failed(value: dict[str, Any]) -> Suggestion:
    return navigate(
        "critical",
        "Your last import failed",
        with_summary("The import raised before any rows were written.", value),
        "Retry the import",
        target="data-import",
        run_id=value.get("run_id"),
        reason_code=value.get("code"),
    )


def _unsupported(value: dict[str, Any]) -> Suggestion:
    fmt = value.get("format")
    return navigate(
        "warning",
        f"Unsupported file format: {fmt}" if fmt else "Unsupported file format",
        "The importer does not read this file type. Convert it (CSV, JSONL or Parquet) "
        "or map it through Adapter Studio.",
        "Choose another file",
        target="data-import",
        run_id=value.get("run_id"),
    )


def _rejected(value: dict[str, Any]) -> Suggestion | None:
    accepted, rejected = value.get("accepted"), value.get("rejected")
    if not isinstance(accepted, int) or not isinstance(rejected, int) or rejected <= 0:
        return None
    total = accepted + rejected
    share = rejected / total if total > 0 else 1.0
    if share < REJECTED_SHARE_WARN:
        return None
    severity: Severity = "critical" if share >= REJECTED_SHARE_CRITICAL else "warning"
    source = value.get("source")
    return navigate(
        severity,
        f"{plural(rejected, 'row')} of {total} were rejected by your last import",
        f"{share:.0%} of the rows did not fit the dataset schema"
        + (f" (source {source})." if source else ".")
        + " Check the field mapping in Adapter Studio and import again.",
        "Review the field mapping",
        target="adapter-studio",
        run_id=value.get("run_id"),
        source=source,
    )


def _adapter(failed: Fact) -> Suggestion:
    value = failed.value
    field = value.get("field")
    what = f"the field “{field}”" if field else "a field"
    return navigate(
        "warning",
        "Adapter Studio could not map your data",
        with_summary(f"The adapter could not resolve {what} against the data.", value),
        "Fix the adapter",
        target="adapter-studio",
        run_id=value.get("run_id"),
        reason_code=value.get("code"),
        field=field,
    )
