"""Pinging pooled connections only after they sat idle.

SQLAlchemy's ``pool_pre_ping`` pings on every checkout; on asyncpg a ping is three round trips (BEGIN,
``;``, ROLLBACK: a transaction of its own, for pgbouncer). On the document exchange's hot path that was
more round trips than the transaction it guarded. A connection checked in moments ago was alive then;
one that sat idle may have been closed by the server, a restart or a firewall meanwhile. So only a
connection idle for longer than ``after`` seconds is pinged on checkout, through the dialect's own ping.
A dead one raises ``DisconnectionError`` and the pool invalidates it (and every connection older than
it) and hands out a fresh one, as pre-ping does. A connection lost while in use fails that use either
way; the pool then replaces it.
"""

import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine

_IDLE_SINCE = "lgsp_idle_since"


def ping_after_idle(engine: AsyncEngine, after: float) -> None:
    """Ping each connection ``engine``'s pool hands out once it has been idle ``after`` seconds or more."""
    sync_engine = engine.sync_engine
    dialect = sync_engine.dialect

    @sa.event.listens_for(sync_engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @sa.event.listens_for(sync_engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get(_IDLE_SINCE)  # absent on a connection just opened
        if since is None or time.monotonic() - since < after:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            if dialect.is_disconnect(exc, dbapi_connection, None):
                raise DisconnectionError(f"a pooled connection was closed while idle: {exc}") from exc
            raise


__all__ = ["ping_after_idle"]
