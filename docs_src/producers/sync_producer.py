"""Publish a model with the sync producer."""

from datetime import UTC, datetime

from runbus import RunEvent, Settings, SyncProducer, sync_redis

settings = Settings()
producer = SyncProducer(sync_redis(settings), settings.names, settings.taxonomy)
entry_id = producer.publish(
    RunEvent(project_id=7, run_id="deploy-7", stage="deployment", severity="warning",
             reason_code="deployment_drift_detected", ts=datetime.now(UTC))
)  # fmt: skip
print("published", entry_id)
