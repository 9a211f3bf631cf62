"""Redis clients built from settings (TLS via rediss://, password via URL or setting)."""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio as aredis

from shared.settings import Settings


def _options(settings: Settings) -> dict[str, Any]:
    options: dict[str, Any] = {"socket_connect_timeout": 5.0, "health_check_interval": 30}
    if settings.redis_password is not None:
        options["password"] = settings.redis_password.get_secret_value()
    return options


def async_redis(settings: Settings, **overrides: Any) -> aredis.Redis:
    """An asyncio Redis client returning bytes."""
    return aredis.Redis.from_url(settings.redis_url, **{**_options(settings), **overrides})


def sync_redis(settings: Settings, **overrides: Any) -> redis.Redis:
    """A blocking Redis client returning bytes."""
    return redis.Redis.from_url(settings.redis_url, **{**_options(settings), **overrides})
