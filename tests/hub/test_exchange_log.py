"""ExchangeLog.flush writes everything added before it was called, even a batch already in flight."""

import asyncio
from datetime import UTC, datetime
from typing import Any, cast

from hub.store import ExchangeRecord
from hub.store.exchange_log import ExchangeLog
from hub.store.store import Store


class SlowStore:
    """Holds each insert until `release` is set, keeping what it wrote."""

    def __init__(self) -> None:
        self.written: list[dict[str, Any]] = []
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def insert_exchanges(self, rows: list[dict[str, Any]]) -> None:
        self.started.set()
        await self.release.wait()
        self.written.extend(rows)


def _record(message_id: str) -> ExchangeRecord:
    now = datetime.now(UTC)
    return ExchangeRecord(
        message_id=message_id,
        request_id=message_id,
        client="VN/GOV/000.00.00.H40/one-stop",
        service="svc",
        operation="op",
        method="POST",
        status=200,
        error_type=None,
        request_bytes=1,
        response_bytes=1,
        received_at=now,
        completed_at=now,
        duration_ms=1.0,
    )


async def test_flush_waits_for_the_batch_the_background_task_is_writing() -> None:
    # Given a log whose background task has taken a record and is still writing it
    store = SlowStore()
    log = ExchangeLog(cast(Store, store), interval=0.001)
    log.add(_record("first"))
    log.start()
    await asyncio.wait_for(store.started.wait(), 5)
    # When a caller flushes while that write is in flight
    flushing = asyncio.create_task(log.flush())
    await asyncio.sleep(0.05)
    # Then the flush has not returned before the in-flight batch is written
    assert not flushing.done()
    store.release.set()
    await asyncio.wait_for(flushing, 5)
    # And the record is written once
    assert [row["message_id"] for row in store.written] == ["first"]
    await log.close()
