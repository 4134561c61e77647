"""ExchangeLog.flush writes everything added before it was called, even a batch already in flight; records
written together read back as given, on each store."""

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, cast

from hub.store import ExchangeRecord
from hub.store.exchange_log import ExchangeLog, _row
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


async def test_exchange_records_written_together_read_back_as_given(store_url: str) -> None:
    # Given a store, and records alike in some fields and different in others (a refusal among answers)
    store = Store.from_url(store_url)
    await store.migrate()
    try:
        records = [_record(f"m{n}") for n in range(5)]
        records[2] = replace(records[2], status=403, error_type="Client.Denied", duration_ms=0.5)
        records[4] = replace(records[4], client="VN/GOV/H40.12/x", request_bytes=70_000)

        # When they are written in one batch, then a batch of one
        await store.insert_exchanges([_row(r) for r in records[:4]])
        await store.insert_exchanges([_row(records[4])])

        # Then every field of every record reads back as it was given
        found = {r["request_id"]: r for r in await store.exchanges(limit=10)}
        assert set(found) == {r.request_id for r in records}
        for record in records:
            row = found[record.request_id]
            for name, value in _row(record).items():
                read = row[name]
                if isinstance(read, datetime) and read.tzinfo is None:
                    read = read.replace(tzinfo=UTC)
                assert read == value, f"{name}: {read!r} != {value!r}"
    finally:
        await store.close()
