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


# ---- the hub under test: brokers and stores as parameters -------------------------------------

import asyncio  # noqa: E402
import concurrent.futures  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Iterator  # noqa: E402


def _admin_sql(statement: str) -> None:
    """Run one statement on the postgres maintenance database, in its own loop and thread."""
    import asyncpg

    async def run() -> None:
        admin = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
        try:
            await admin.execute(statement)
        finally:
            await admin.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result(timeout=60)


@pytest.fixture
def postgres_database(postgres_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    name = f"lgsp_t_{uuid.uuid4().hex[:12]}"
    _admin_sql(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        _admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["embedded", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)])
def broker_url(request: pytest.FixtureRequest) -> str:
    """Each hub test runs on the embedded broker and on RabbitMQ."""
    if request.param == "embedded":
        return "embedded://"
    return str(request.getfixturevalue("rabbitmq_url"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    """Each store-touching hub test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/hub.sqlite3"
    return str(request.getfixturevalue("postgres_database"))


def unique_namespace() -> str:
    """A broker namespace no other test (or earlier run) uses."""
    return f"t{uuid.uuid4().hex[:10]}"
