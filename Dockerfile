# One image for every runbus service: the command picks the service
# (runbus run validator|persister|coach|api|all). Dependencies come from uv.lock, exactly.
FROM python:3.11-slim AS build
ENV UV_PROJECT_ENVIRONMENT=/app/.venv \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN pip install "uv==0.13.9"
WORKDIR /app
# Dependencies first (a layer that survives code changes), then the project itself.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY shared ./shared
COPY services ./services
COPY runbus ./runbus
COPY hatch_build.py ./
RUN uv sync --frozen --no-dev

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /app runbus
WORKDIR /app
COPY --from=build /app /app
RUN mkdir -p /app/var && chown runbus:runbus /app/var
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    RUNBUS_LOG_JSON=true \
    RUNBUS_API_HOST=0.0.0.0
USER runbus
EXPOSE 8000
STOPSIGNAL SIGTERM
CMD ["runbus", "run", "all"]
