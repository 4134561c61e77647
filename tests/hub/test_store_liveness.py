"""Pooled PostgreSQL connections are pinged before use only after sitting idle, and a connection the
server closed while idle is replaced before anyone uses it."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from hub.store.store import Store

pytestmark = pytest.mark.postgres

IDLE = 1.0


@pytest.fixture
async def store(postgres_url: str) -> AsyncIterator[Store]:
    store = Store.from_url(postgres_url, ping_after_idle=IDLE)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def never_idle_store(postgres_url: str) -> AsyncIterator[Store]:
    # Idle spells in the test are far shorter than this, however slow the machine.
    store = Store.from_url(postgres_url, ping_after_idle=600.0)
    try:
        yield store
    finally:
        await store.close()


def count_pings(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    dialect = store.engine.sync_engine.dialect
    real_ping = dialect.do_ping
    pings: list[int] = []

    def counting(dbapi_connection: Any) -> bool:
        pings.append(1)
        return bool(real_ping(dbapi_connection))

    monkeypatch.setattr(dialect, "do_ping", counting)
    return pings


async def backend_pid(store: Store) -> int:
    async with store.engine.connect() as connection:
        return int(await connection.scalar(sa.text("SELECT pg_backend_pid()")))


async def terminate(postgres_url: str, pid: int) -> None:
    admin = await asyncpg.connect(postgres_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()


async def test_store_liveness_pings_only_connections_that_sat_idle(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a pool whose pings are counted, and one connection opened and returned
    pings = count_pings(store, monkeypatch)
    first = await backend_pid(store)

    # When it is used again at once, several times, and then once more after sitting idle
    busy = [await backend_pid(store) for _ in range(5)]
    await asyncio.sleep(IDLE * 1.5)
    after_idle = await backend_pid(store)

    # Then only the use after the idle spell pinged, always on the same live connection
    assert busy == [first] * 5 and after_idle == first
    assert len(pings) == 1


async def test_store_liveness_replaces_a_connection_the_server_closed_while_idle(
    store: Store, postgres_url: str
) -> None:
    # Given a pooled connection that the server terminates while it sits idle
    first = await backend_pid(store)
    await terminate(postgres_url, first)
    await asyncio.sleep(IDLE * 1.5)

    # When the store is used again
    second = await backend_pid(store)

    # Then the ping found it dead and the use went through on a fresh connection
    assert second != first


async def test_store_liveness_a_connection_lost_while_busy_fails_one_use_then_recovers(
    never_idle_store: Store, postgres_url: str
) -> None:
    store = never_idle_store
    # Given a pooled connection terminated by the server moments after its last use (not yet idle)
    first = await backend_pid(store)
    await terminate(postgres_url, first)

    # When the store is used at once, then again
    with pytest.raises(DBAPIError):
        await backend_pid(store)
    second = await backend_pid(store)

    # Then that one use fails (as a connection lost mid-use does), and the pool replaced the connection
    assert second != first
