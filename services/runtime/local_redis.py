"""`runbus run all --ensure-redis`: use the Redis at the URL, or start a local one for you.

When nothing answers at ``RUNBUS_REDIS_URL``, that URL is a plain loopback one and a
``redis-server`` binary is on the PATH, a server is started on that port, bound to loopback,
with append-only persistence and its files under ``var/redis``; it is stopped after the
services. Otherwise one line says how to get a Redis.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from services.runtime.logic import is_loopback_redis, redis_port
from services.runtime.supervisor import dies_with_this_process
from shared.connections import redact, sync_redis
from shared.logging import get_logger
from shared.settings import Settings

log = get_logger("runbus.runtime")

HOW_TO_GET_REDIS = (
    "no Redis answers at {url}: install redis-server (apt-get install redis-server, "
    "brew install redis) and rerun, start one (docker run -p 6379:6379 redis:7), "
    "or set RUNBUS_REDIS_URL"
)


class RedisUnavailable(RuntimeError):
    """No Redis answers and none can be started here; the message says what to do."""


@dataclass
class LocalRedis:
    """A redis-server this process started (None when an existing one answered)."""

    proc: subprocess.Popen[bytes] | None = None

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (Redis fsyncs its AOF and exits), SIGKILL after the timeout."""
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout)
        log.info("local_redis_stopped")
        self.proc = None


def answers(settings: Settings, timeout: float = 1.0) -> bool:
    """True when a Redis answers PING at the settings' URL."""
    client = sync_redis(settings, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def server_command(binary: str, port: int, workdir: Path) -> list[str]:
    """The redis-server command line: loopback only, AOF on, files under `workdir`."""
    return [
        binary, "--bind", "127.0.0.1", "-::1", "--port", str(port), "--dir", str(workdir),
        "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
        "--protected-mode", "yes", "--daemonize", "no", "--logfile", "redis.log",
    ]  # fmt: skip


def ensure_redis(settings: Settings, workdir: Path, start_timeout: float = 15.0) -> LocalRedis:
    """Return once a Redis answers; start a local one if allowed, else `RedisUnavailable`."""
    if answers(settings):
        return LocalRedis()
    url = settings.redis_url
    binary = shutil.which("redis-server")
    if not is_loopback_redis(url) or binary is None:
        raise RedisUnavailable(HOW_TO_GET_REDIS.format(url=redact(url)))
    workdir.mkdir(parents=True, exist_ok=True)
    command = server_command(binary, redis_port(url), workdir)
    # Its own process group: a Ctrl-C must not stop Redis before the services have drained.
    proc = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        process_group=0,
        preexec_fn=dies_with_this_process(),
    )
    local = LocalRedis(proc)
    deadline = time.monotonic() + start_timeout
    while not answers(settings, timeout=0.5):
        if proc.poll() is not None or time.monotonic() > deadline:
            local.stop()
            raise RedisUnavailable(
                f"started redis-server but it does not answer at {redact(url)} "
                f"(see {workdir / 'redis.log'})"
            )
        time.sleep(0.05)
    log.info("local_redis_started", url=redact(url), dir=str(workdir), pid=proc.pid)
    return local
