"""Configuration: one `Settings` object built once from ``RUNBUS_*`` env vars and ``.env``."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

from shared.names import Names
from shared.taxonomy import Taxonomy, load_taxonomy

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Every knob of runbus. Build it once (`Settings()`) and pass it down."""

    model_config = SettingsConfigDict(
        env_prefix="RUNBUS_",
        env_file=".env",
        extra="ignore",
        frozen=True,
        env_ignore_empty=True,
    )

    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        description="Redis URL; rediss:// for TLS; credentials in the URL.",
    )
    redis_password: SecretStr | None = Field(None, description="Overrides the URL's password.")
    database_url: str = Field(
        f"sqlite:///{REPO_ROOT / 'var' / 'history.db'}",
        description="History database: sqlite:///path or postgresql://user@host/db.",
    )
    namespace: str = Field("runbus", description="Prefix of every stream, group and key.")
    partitions: int = Field(
        1,
        ge=1,
        le=1024,
        description="Partitions of the bus: each has its own incoming, valid and dead-letter "
        "streams under one hash tag (spread over a Redis Cluster's masters). 1 keeps the "
        "single-partition names.",
    )
    redis_cluster: bool = Field(
        False, description="Connect to a Redis Cluster (any node's URL as RUNBUS_REDIS_URL)."
    )
    max_event_bytes: int = Field(64 * 1024, description="Largest accepted entry (bytes).")
    extra_codes_file: Path | None = Field(
        None, description="JSON file that extends the taxonomy (reason codes, Pulse types)."
    )
    cross_stage_reason_codes: Literal["reject", "accept"] = Field(
        "reject",
        description="Accept a reason code of another stage? System codes are accepted anywhere.",
    )
    consumer_name: str | None = Field(
        None, description="Stable consumer name; default <host>-<slot>."
    )
    consumer_slot: int = Field(0, description="Slot of this process among its replicas.")
    batch_size: int = Field(1000, description="Entries read per XREADGROUP.")
    block_ms: int = Field(1000, description="XREADGROUP BLOCK timeout (ms).")
    claim_idle_ms: int = Field(60_000, description="Claim pending entries idle this long (ms).")
    janitor_interval_s: float = Field(10.0, description="How often the janitor runs (s).")
    max_deliveries: int = Field(5, description="Deliveries before an entry is dead-lettered.")
    trim_interval_s: float = Field(30.0, description="How often streams are trimmed (s).")
    stream_min_age_s: float = Field(
        0.0, description="Keep acknowledged entries at least this long before trimming (s)."
    )
    dead_letter_retention: bool = Field(
        True,
        description="Persister: archive dead letters past their age or count limit into the "
        "history database, then trim them off the dead-letter stream (false: the stream grows "
        "until `runbus dlq purge`).",
    )
    dead_letter_max_age_s: float = Field(
        7 * 86400.0,
        ge=0,
        description="Dead letters older than this (s) are archived and leave the stream "
        "(0: no age limit).",
    )
    dead_letter_max_entries: int = Field(
        100_000,
        ge=0,
        description="Dead letters kept on each partition's stream; the oldest beyond it are "
        "archived and leave the stream (0: no length limit).",
    )
    dead_letter_sweep_interval_s: float = Field(
        10.0, gt=0, description="How often the persister applies the dead-letter retention (s)."
    )
    migrate_on_start: bool = Field(True, description="Apply history migrations at start.")
    api_host: str = Field("127.0.0.1", description="HTTP API bind address.")
    api_port: int = Field(8000, description="HTTP API port.")
    api_workers: int = Field(
        1,
        ge=1,
        le=64,
        description="API processes serving the one port (SO_REUSEPORT; the kernel spreads "
        "connections); `runbus run api` and `runbus run all` supervise them.",
    )
    api_token: SecretStr | None = Field(
        None, description="Bearer token for writes (POST /api/events, ...)."
    )
    api_read_token_required: bool = Field(False, description="Require the token for reads too.")
    ui_sample_s: float = Field(
        2.0,
        gt=0,
        description="Dashboard: how often the API samples the bus status and the stages' "
        "counters for live pages (s); the API keeps the last 10 minutes of samples.",
    )
    log_level: str = Field("INFO", description="Log level.")
    log_json: bool | None = Field(None, description="JSON logs; default: JSON unless a TTY.")
    spool_path: Path = Field(
        REPO_ROOT / "var" / "producer-spool.db", description="Producer best-effort spool file."
    )
    history_months_ahead: int = Field(
        3, description="PostgreSQL history: monthly partitions created ahead of the current one."
    )
    history_retry_max_s: float = Field(
        5.0, description="Persister: longest wait between retries while the database is down (s)."
    )
    actions_max_len: int = Field(
        100_000,
        ge=1,
        description="Action requests kept on the actions stream (approximate MAXLEN of each "
        "XADD); the platform should consume them well before.",
    )
    action_url_template: str | None = Field(
        None,
        description="URL a navigate action opens, e.g. https://platform.example/projects/"
        "{project_id}/{target}: {project_id}, {stage} and the action's params, each URL-quoted; "
        "a result that is not http(s) or names a missing placeholder gives no URL.",
    )
    operator: str | None = Field(
        None, description="Who runs `runbus dlq redrive/purge` (audit); default: the OS user."
    )
    redis_ca_file: Path | None = Field(
        None, description="CA bundle that signs the Redis server's certificate (rediss:// only)."
    )
    instance_id: str | None = Field(
        None,
        description="Id of one running system, reported by GET /healthz; `runbus run all` "
        "gives its children its own, so readiness knows its API. Default: a random id.",
    )
    secrets_dir: Path | None = Field(
        None,
        description="Directory of secret files, one per setting (runbus_redis_password, ...); "
        "read from the RUNBUS_SECRETS_DIR environment variable.",
    )

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy; what is derived from the settings (names, taxonomy) is derived again."""
        copy = super().model_copy(update=update, deep=deep)
        for derived in ("names", "taxonomy"):
            copy.__dict__.pop(derived, None)
        return copy

    @cached_property
    def names(self) -> Names:
        """Stream, group and key names under this namespace."""
        return Names(self.namespace, self.partitions)

    @cached_property
    def instance(self) -> str:
        """`instance_id`, or a random id chosen once for this settings object."""
        return self.instance_id or uuid.uuid4().hex

    @cached_property
    def taxonomy(self) -> Taxonomy:
        """The taxonomy in force: the seed plus `extra_codes_file`."""
        return load_taxonomy(self.extra_codes_file, self.cross_stage_reason_codes)

    def consumer_for(self, service: str) -> str:
        """Stable consumer name, so a restarted process finds its own pending entries."""
        if self.consumer_name:
            return self.consumer_name
        return f"{service}-{socket.gethostname()}-{self.consumer_slot}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Secret files come from `secrets_dir` (argument or RUNBUS_SECRETS_DIR); env vars win."""
        given = getattr(init_settings, "init_kwargs", {}).get("secrets_dir")
        directory = given or os.environ.get("RUNBUS_SECRETS_DIR")
        if directory:
            file_secret_settings = SecretsSettingsSource(settings_cls, secrets_dir=directory)
        return init_settings, env_settings, dotenv_settings, file_secret_settings
