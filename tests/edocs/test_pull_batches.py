"""The worker's pull deliveries: settled in batches whose UPDATEs share one store connection while pulls
keep coming, given back once they stop (or the workers stop); each delivery acked after its batch."""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, cast

from hub.broker.base import Broker, Delivery, Message
from hub.edocs.delivery import DeliveryWorkers, EdocsMetrics, EdocsTopology
from hub.edocs.repository import EdocsRepository, MakeAvailable
from hub.edocs.settings import EdocsSettings
from hub.errors import StoreError
from hub.metrics import HubMetrics
from tests.hub.broker.conftest import eventually

CREATED = datetime(2024, 5, 2, tzinfo=UTC)


class _Pull(Delivery):
    def __init__(self, delivery_id: int) -> None:
        self.message = Message(json.dumps({"delivery": delivery_id, "kind": "edoc"}).encode())
        self.queue, self.exchange, self.routing_key, self.redelivered = "pull", "edocs", "pull", False
        self.outcome: str | None = None

    async def ack(self) -> None:
        self.outcome = self.outcome or "ack"

    async def nack(self, *, requeue: bool) -> None:
        self.outcome = self.outcome or f"nack requeue={requeue}"


class _Store:
    """The repository's `making_available`: records the batches of each block (one connection each);
    giving the connection back takes a moment."""

    def __init__(self) -> None:
        self.blocks: list[list[list[int]]] = []
        self.open = 0
        self.closing = asyncio.Event()
        self.fail_next = False

    @contextlib.asynccontextmanager
    async def making_available(self) -> AsyncIterator[MakeAvailable]:
        batches: list[list[int]] = []
        self.blocks.append(batches)
        self.open += 1

        async def make_available(ids: Any) -> dict[int, datetime]:
            if self.fail_next:
                self.fail_next = False
                raise StoreError("connection lost")
            batches.append(sorted(ids))
            return dict.fromkeys(ids, CREATED)

        try:
            yield make_available
        finally:
            self.closing.set()
            await asyncio.sleep(0.05)
            self.closing.clear()
            self.open -= 1


def _workers(store: _Store, *, hold: float) -> DeliveryWorkers:
    settings = EdocsSettings()
    return DeliveryWorkers(
        cast(Broker, None),
        cast(EdocsRepository, store),
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        settings,
        EdocsTopology("t", settings.push.retry_delays_ms),
        EdocsMetrics(HubMetrics()),
        gather=0.001,
        hold=hold,
    )


async def _pull(workers: DeliveryWorkers, *ids: int) -> list[_Pull]:
    deliveries = [_Pull(i) for i in ids]
    await asyncio.wait_for(asyncio.gather(*(workers._on_pull(d) for d in deliveries)), 5)
    return deliveries


async def test_pull_batches_share_one_connection_until_pulls_stop_then_a_late_pull_gets_a_fresh_one() -> None:
    store = _Store()
    workers = _workers(store, hold=0.1)
    # Given two bursts of pulls, a few milliseconds apart
    settled = await _pull(workers, 1, 2, 3) + await _pull(workers, 4, 5)
    # Then each burst was one batch, both on one connection, each delivery acked after its batch
    assert store.blocks == [[[1, 2, 3], [4, 5]]]
    assert [d.outcome for d in settled] == ["ack"] * 5
    # When no pull comes for longer than the hold, the connection is given back; and a pull arriving
    # while it is being given back is settled all the same, on a fresh connection
    await asyncio.wait_for(store.closing.wait(), 2)
    (late,) = await _pull(workers, 6)
    assert late.outcome == "ack"
    assert store.blocks == [[[1, 2, 3], [4, 5]], [[6]]]
    await eventually(lambda: store.open == 0, what="every connection given back")


async def test_pull_batch_failing_requeues_its_deliveries_and_the_next_batch_goes_on() -> None:
    store = _Store()
    workers = _workers(store, hold=0.1)
    # Given the store failing the first batch
    store.fail_next = True
    # When two batches come
    failed = await _pull(workers, 1, 2)
    settled = await _pull(workers, 3)
    # Then the first one's deliveries are requeued (not acked), the next is settled
    assert [d.outcome for d in failed] == ["nack requeue=True"] * 2
    assert settled[0].outcome == "ack"
    assert [batch for block in store.blocks for batch in block] == [[3]]


async def test_pull_workers_stopping_give_back_the_connection_held_for_pulls() -> None:
    store = _Store()
    workers = _workers(store, hold=30.0)
    # Given a batch settled, its connection held for more pulls
    await _pull(workers, 1)
    assert store.open == 1
    # When the workers stop
    await asyncio.wait_for(workers.stop(timeout=1), 2)
    # Then the connection is given back at once, not after the hold
    assert store.open == 0
