#!/usr/bin/env bash
# Make sure the services the real-service tests use are running on 127.0.0.1 (starts them if not).
set -uo pipefail

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {  # name port seconds
  for _ in $(seq 1 "$3"); do up "$2" && return 0; sleep 1; done
  echo "services: $1 did not come up on 127.0.0.1:$2" >&2; return 1
}

if ! up 5672; then
  echo "services: starting RabbitMQ"
  rabbitmq-server -detached || true
  wait_port RabbitMQ 5672 90
  command -v rabbitmqctl >/dev/null && rabbitmqctl -q await_startup >/dev/null 2>&1 || true
fi
if ! up 5432; then
  echo "services: starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  wait_port PostgreSQL 5432 60
fi
if ! up 6379; then
  echo "services: starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  wait_port Redis 6379 30
fi
exit 0
