"""The HTTP API: run history, coach suggestions, dead letters, status, ingestion, metrics, docs.

`services.api.app.create_app(settings)` builds the FastAPI app; `runbus run api` serves it with
uvicorn on ``RUNBUS_API_HOST``:``RUNBUS_API_PORT``.
"""
