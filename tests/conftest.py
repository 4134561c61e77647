"""Shared fixtures: real services on 127.0.0.1, skipped locally when absent, failing when CI=true."""

import os
import socket

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

RABBITMQ_URL = os.environ.get("LGSP_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
POSTGRES_URL = os.environ.get("LGSP_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("LGSP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def require_service(name: str, port: int) -> None:
    """Skip when a real service is absent, except in CI, where its absence is a failure."""
    if _reachable(port):
        return
    message = f"{name} is not reachable on 127.0.0.1:{port}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: real-service tests must run)")
    pytest.skip(message)


@pytest.fixture
def rabbitmq_url() -> str:
    require_service("RabbitMQ", 5672)
    return RABBITMQ_URL


@pytest.fixture
def postgres_url() -> str:
    require_service("PostgreSQL", 5432)
    return POSTGRES_URL


@pytest.fixture
def redis_url() -> str:
    require_service("Redis", 6379)
    return REDIS_URL


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
