"""The Store: one async engine, Alembic migrations, and the small queries the core needs."""

import asyncio
import functools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from hub.errors import StoreError
from hub.store import liveness, tables
from hub.store.unnest import split_columns, unnest_parameters, unnest_rows

_MIGRATIONS = Path(__file__).with_name("migrations")
PING_AFTER_IDLE = 1.0


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


@functools.lru_cache(maxsize=32)
def _unnest_exchanges(arrays: tuple[str, ...], scalars: tuple[str, ...]) -> sa.TextClause:
    # A batch of exchange records in one statement (hub/store/unnest.py), not one per record.
    return sa.text(f"INSERT INTO {tables.exchanges.name} {unnest_rows(tables.exchanges, arrays, scalars)}")


class Store:
    """Durable state of the hub; build with `Store.from_url` and call `migrate()` once."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._flag_cache: dict[str, tuple[float, str | None]] = {}
        self._inserts = 0
        self._flag_reads: dict[str, asyncio.Task[str | None]] = {}

    @classmethod
    def from_url(cls, url: str, *, echo: bool = False, ping_after_idle: float = PING_AFTER_IDLE) -> "Store":
        """``ping_after_idle``: a pooled server connection idle this many seconds is pinged before use
        (hub/store/liveness.py); SQLite has no server connection to lose."""
        kwargs: dict[str, Any] = {"echo": echo}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 30}
        engine = create_async_engine(url, **kwargs)
        if not url.startswith("sqlite"):
            liveness.ping_after_idle(engine, ping_after_idle)
        else:

            @sa.event.listens_for(engine.sync_engine, "connect")
            def _pragmas(dbapi_connection: Any, _record: Any) -> None:
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
                cursor.execute("PRAGMA foreign_keys=ON")
                cursor.close()

        return cls(engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (idempotent)."""

        def upgrade(connection: sa.Connection) -> None:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

        try:
            async with self.engine.begin() as connection:
                await connection.run_sync(upgrade)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot migrate the store: {exc}") from exc

    async def close(self) -> None:
        await self.engine.dispose()

    async def healthy(self) -> bool:
        try:
            async with self.engine.connect() as connection:
                await connection.execute(sa.text("SELECT 1"))
            return True
        except (SQLAlchemyError, OSError):
            return False

    async def insert_exchanges(self, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        try:
            async with self.engine.begin() as connection:
                if self.dialect == "postgresql":
                    split = split_columns(rows)
                    await connection.execute(
                        _unnest_exchanges(*split), unnest_parameters(tables.exchanges, rows, split)
                    )
                else:
                    await connection.execute(tables.exchanges.insert(), list(rows))
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot write {len(rows)} exchange records: {exc}") from exc

    async def exchanges(self, *, limit: int = 100, service: str | None = None) -> list[dict[str, Any]]:
        query = sa.select(tables.exchanges).order_by(tables.exchanges.c.id.desc()).limit(limit)
        if service:
            query = query.where(tables.exchanges.c.service == service)
        async with self.engine.connect() as connection:
            result = await connection.execute(query)
            return [dict(row._mapping) for row in result]

    async def remember_message(self, client: str, message_id: str, *, retention: timedelta) -> bool:
        """Record that `client` sent `message_id`; False when it was seen before (a replay).

        Entries older than `retention` are pruned now and then, so the table stays small.
        """
        now = datetime.now(UTC)
        try:
            async with self.engine.begin() as connection:
                await connection.execute(
                    tables.seen_messages.insert().values(client=client, message_id=message_id, seen_at=now)
                )
        except IntegrityError:
            return False
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot record message id {message_id!r}: {exc}") from exc
        self._inserts += 1
        if self._inserts % 1000 == 1:
            async with self.engine.begin() as connection:
                await connection.execute(
                    tables.seen_messages.delete().where(tables.seen_messages.c.seen_at < now - retention)
                )
        return True

    async def set_flag(self, name: str, value: str) -> None:
        now = datetime.now(UTC)
        async with self.engine.begin() as connection:
            updated = await connection.execute(
                tables.flags.update().where(tables.flags.c.name == name).values(value=value, updated_at=now)
            )
            if updated.rowcount == 0:
                await connection.execute(tables.flags.insert().values(name=name, value=value, updated_at=now))
        self._flag_cache.pop(name, None)

    async def get_flag(self, name: str, *, max_age: float = 0.0) -> str | None:
        """Read a flag; with `max_age` > 0 a cached value that young is returned without a query."""
        loop = asyncio.get_running_loop()
        cached = self._flag_cache.get(name)
        if cached is not None and loop.time() - cached[0] < max_age:
            return cached[1]
        # One query in flight per flag: when the cache expires under load, every request waiting
        # for the flag shares it instead of each sending its own.
        reading = self._flag_reads.get(name)
        if reading is None:
            reading = loop.create_task(self._read_flag(name))
            self._flag_reads[name] = reading
            reading.add_done_callback(lambda _: self._flag_reads.pop(name, None))
        return await asyncio.shield(reading)

    async def _read_flag(self, name: str) -> str | None:
        async with self.engine.connect() as connection:
            value = await connection.scalar(
                sa.select(tables.flags.c.value).where(tables.flags.c.name == name)
            )
        self._flag_cache[name] = (asyncio.get_running_loop().time(), value)
        return value
