#!/usr/bin/env bash
# Make sure the Redis (and PostgreSQL) the tests talk to answer on loopback.
# If nothing answers at 127.0.0.1:6379 and a redis-server binary exists, start one
# with its files under var/. Fail loudly otherwise: tests never skip a missing server.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p var/redis
redis_up() { (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; }
if ! redis_up; then
  if command -v redis-server >/dev/null; then
    echo "ensure-services: starting redis-server on 127.0.0.1:6379 (files in var/redis)"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
      --dir "$PWD/var/redis" --logfile "$PWD/var/redis/redis.log"
    for _ in $(seq 50); do redis_up && break; sleep 0.1; done
  fi
  redis_up || { echo "ensure-services: no Redis at 127.0.0.1:6379 and no redis-server binary (apt-get install redis-server)" >&2; exit 1; }
fi
pg_up() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
if ! pg_up && command -v pg_ctlcluster >/dev/null; then
  echo "ensure-services: starting the local PostgreSQL cluster"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  for _ in $(seq 50); do pg_up && break; sleep 0.1; done
fi
pg_up || { echo "ensure-services: no PostgreSQL at 127.0.0.1:5432" >&2; exit 1; }
