"""Telemetry that never blocks the run: the best-effort producer and its spool."""

from datetime import UTC, datetime

from runbus import BestEffortProducer, Settings

settings = Settings()
telemetry = BestEffortProducer(
    settings.redis_url,
    settings.names,
    settings.spool_path,
    taxonomy=settings.taxonomy,
    cluster=settings.redis_cluster,
)
now = datetime.now(UTC).isoformat()
telemetry.publish({"run_id": "run-7f3a", "event_type": "stage.completed", "severity": "info",
                   "details": {"stage": "fit"}, "created_at": now})  # fmt: skip
# ... the run goes on ...
telemetry.close(timeout=10)
print(telemetry.counters)
