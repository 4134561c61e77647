"""Guaranteed delivery over the broker: the topology, the publisher with its outbox, and the consumers.

Every delivery row is written (state ``queued``) in the same transaction as its document or status,
then one persistent, confirmed message per delivery goes to the ``<ns>.edocs`` exchange, routed
``pull`` or ``push``. A message the broker never confirmed is re-sent by the outbox scan, so a
crash or a dropped connection between commit and publish loses nothing. Consumers settle each
delivery with one conditional UPDATE and ack only after it committed; a redelivered message finds the
row already settled. Pull deliveries arriving together share one UPDATE, and while they keep coming
those UPDATEs share one store connection. Pushes retry through the push queue's delayed-retry
queues, then dead-letter.
"""

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from hub.broker.base import Broker, Consumer, Delivery, ExchangeSpec, Message, QueueSpec, Topology
from hub.edocs.directory import AgencyDirectory
from hub.edocs.errors import DeliveryFailed
from hub.edocs.repository import EdocsRepository, aware, utcnow
from hub.edocs.settings import EdocsSettings
from hub.edocs.transport import PushRequest, PushTransport
from hub.errors import BrokerError, StoreError
from hub.metrics import HubMetrics

log = logging.getLogger(__name__)

DEAD_LETTER_ALERT = "edocs-dead-letter"
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class EdocsMetrics:
    """Document exchange metrics on the hub's registry."""

    def __init__(self, hub_metrics: HubMetrics) -> None:
        registry: CollectorRegistry = hub_metrics.registry
        self.alerts = hub_metrics.alerts
        self.submissions = Counter(
            "lgsp_edocs_submissions",
            "Packages and statuses submitted, by outcome",
            ["kind", "outcome"],
            registry=registry,
        )
        self.deliveries = Counter(
            "lgsp_edocs_deliveries",
            "Delivery attempts by mode and outcome",
            ["mode", "outcome"],
            registry=registry,
        )
        self.to_inbox = Histogram(
            "lgsp_edocs_submit_to_inbox_seconds",
            "From the package received to its delivery available or pushed",
            ["mode"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )


@dataclass(frozen=True, slots=True)
class EdocsTopology:
    """Names of the document exchange's exchange and queues under a broker namespace."""

    namespace: str
    retry_delays_ms: tuple[int, ...]

    @property
    def exchange(self) -> str:
        return f"{self.namespace}.edocs"

    @property
    def pull(self) -> QueueSpec:
        return QueueSpec(f"{self.namespace}.edocs.pull", bindings=((self.exchange, "pull"),))

    @property
    def push(self) -> QueueSpec:
        return QueueSpec(
            f"{self.namespace}.edocs.push",
            bindings=((self.exchange, "push"),),
            retry_delays_ms=self.retry_delays_ms,
        )

    def topology(self) -> Topology:
        return Topology(exchanges=(ExchangeSpec(self.exchange, "direct"),), queues=(self.pull, self.push))

    def queue_for(self, mode: str) -> QueueSpec:
        return self.push if mode == "push" else self.pull


def delivery_message(row: Mapping[str, Any]) -> Message:
    body = json.dumps({"delivery": row["id"], "kind": row["kind"]}).encode()
    return Message(body, content_type="application/json", message_id=row["key"], type=f"edocs.{row['kind']}")


class DeliveryPublisher:
    """Publishes delivery messages (confirmed) and records, in batches, which the broker took."""

    def __init__(
        self, broker: Broker, repository: EdocsRepository, names: EdocsTopology, *, mark_every: float = 0.25
    ) -> None:
        self._broker = broker
        self._repository = repository
        self._names = names
        self._mark_every = mark_every
        self._confirmed: list[int] = []
        self._marker: asyncio.Task[None] | None = None

    async def publish(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Publish one message per delivery; those the broker refuses stay for the outbox scan."""
        if not rows:
            return 0
        outcomes = await self._broker.publish_many(
            self._names.exchange, [(row["mode"], delivery_message(row)) for row in rows]
        )
        published = 0
        for row, outcome in zip(rows, outcomes, strict=True):
            if outcome is not None:
                log.warning(
                    "delivery %s not published yet (%s); the outbox will resend it", row["key"], outcome
                )
            else:
                self._confirmed.append(row["id"])
                published += 1
        if self._confirmed and self._marker is None:
            self._marker = asyncio.get_running_loop().create_task(self._mark(), name="edocs-published")
        return published

    async def _mark(self) -> None:
        # One UPDATE for every delivery confirmed in the last quarter second: the mark only keeps the
        # outbox (whose grace is tens of seconds) from resending, so it need not be prompt, and each
        # transaction costs the store a checkout and a commit. A mark lost to a crash only means
        # the outbox publishes that delivery again, which its consumer ignores.
        try:
            while self._confirmed:
                await asyncio.sleep(self._mark_every)
                batch, self._confirmed = self._confirmed, []
                try:
                    await self._repository.mark_published(batch)
                except StoreError:
                    log.warning(
                        "could not record %d published deliveries; the outbox may resend them", len(batch)
                    )
        finally:
            self._marker = None

    async def flush(self) -> None:
        """Wait until every confirmed delivery is recorded as published."""
        while self._marker is not None:
            await asyncio.shield(self._marker)

    async def republish_due(self, grace: float) -> int:
        """Resend deliveries queued more than ``grace`` seconds ago whose message was never confirmed."""
        rows = await self._repository.unpublished(utcnow() - timedelta(seconds=grace))
        if rows:
            log.info("outbox: resending %d unpublished deliveries", len(rows))
        return await self.publish(rows)

    async def recover(self) -> int:
        """Publish every unsettled delivery again: for a broker that kept no messages (the embedded one
        after a restart); consumers ignore what is already settled."""
        total, after = 0, 0
        while rows := await self._repository.unsettled(after):
            total += await self.publish(rows)
            after = rows[-1]["id"]
        if total:
            log.info("recovered %d unsettled deliveries into a fresh broker", total)
        return total


BodySource = Callable[[Mapping[str, Any]], Awaitable[tuple[AsyncIterator[bytes], dict[str, str]]]]


class DeliveryWorkers:
    """Consumes the pull and push queues and runs the outbox scan, in a process that runs workers."""

    def __init__(
        self,
        broker: Broker,
        repository: EdocsRepository,
        directory: AgencyDirectory,
        publisher: DeliveryPublisher,
        transport: PushTransport,
        body_for: BodySource,
        settings: EdocsSettings,
        names: EdocsTopology,
        metrics: EdocsMetrics,
        *,
        gather: float = 0.01,
        hold: float = 1.0,
    ) -> None:
        """``gather``: seconds a pull delivery waits for others to share its UPDATE; ``hold``: seconds
        without pull deliveries after which the store connection their UPDATEs share is given back."""
        self._broker = broker
        self._repository = repository
        self._directory = directory
        self._publisher = publisher
        self._transport = transport
        self._body_for = body_for
        self._settings = settings
        self._names = names
        self._metrics = metrics
        self._delays = settings.push.retry_delays_ms
        # A push holds its delivery for its timeout plus a margin; a worker that dies holding it is
        # replaced once the lease runs out.
        self._lease = timedelta(seconds=settings.push.timeout + min(5.0, settings.push.timeout))
        self._consumers: list[Consumer] = []
        self._outbox: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[Any]] = set()
        self._pull_batch: list[tuple[int, asyncio.Future[datetime | None]]] = []
        self._pull_flusher: asyncio.Task[None] | None = None
        self._pulls_arrived = asyncio.Event()
        self._gather = gather
        self._hold = hold
        self._pulls_available = metrics.deliveries.labels("pull", "available")
        self._pull_latency = metrics.to_inbox.labels("pull")

    async def start(self) -> None:
        self._consumers.append(
            await self._broker.consume(self._names.pull.name, self._on_pull, prefetch=self._settings.prefetch)
        )
        self._consumers.append(
            await self._broker.consume(
                self._names.push.name, self._on_push, prefetch=self._settings.push.concurrency
            )
        )
        self._outbox = asyncio.get_running_loop().create_task(self._outbox_loop(), name="edocs-outbox")

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop consuming; deliveries in flight get ``timeout`` seconds to finish, then are abandoned
        (unacked, so the broker hands them to another worker)."""
        for consumer in self._consumers:
            with contextlib.suppress(BrokerError):
                await consumer.cancel()
        self._consumers.clear()
        if self._outbox is not None:
            self._outbox.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._outbox
            self._outbox = None
        if self._in_flight:
            _, pending = (
                await asyncio.wait(set(self._in_flight), timeout=timeout)
                if timeout > 0
                else ((), set(self._in_flight))
            )
            for task in pending:
                task.cancel()
        if self._pull_flusher is not None:  # waiting for pulls, holding its store connection
            flusher, self._pull_flusher = self._pull_flusher, None
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher

    async def _outbox_loop(self) -> None:
        while True:
            await asyncio.sleep(self._settings.outbox_interval)
            try:
                await self._publisher.republish_due(self._settings.outbox_grace)
            except (StoreError, BrokerError) as exc:
                log.warning("outbox scan failed: %s", exc)

    async def _guard(self, delivery: Delivery, work: Callable[[int], Awaitable[None]]) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            try:
                delivery_id = int(json.loads(delivery.message.body.decode())["delivery"])
            except (ValueError, KeyError, TypeError):
                log.error(
                    "edocs: undecodable delivery message %r; dead-lettered", delivery.message.message_id
                )
                await delivery.nack(requeue=False)
                return
            try:
                await work(delivery_id)
            except StoreError as exc:
                # The store is the source of truth: keep the message until it can be recorded.
                log.warning("edocs delivery %s: store unavailable (%s); requeued", delivery_id, exc)
                await asyncio.sleep(1.0)
                await delivery.nack(requeue=True)
            except BrokerError:
                raise  # the message comes back when the connection does
            except Exception as exc:
                log.exception("edocs delivery %s failed unexpectedly; dead-lettered", delivery_id)
                with contextlib.suppress(StoreError):
                    await self._repository.mark_dead(delivery_id, f"internal error: {type(exc).__name__}")
                self._metrics.alerts.labels(DEAD_LETTER_ALERT).inc()
                await delivery.nack(requeue=False)
        finally:
            if task is not None:
                self._in_flight.discard(task)

    async def _on_pull(self, delivery: Delivery) -> None:
        async def work(delivery_id: int) -> None:
            created = await self._available(delivery_id)
            if created is not None:
                self._pulls_available.inc()
                self._pull_latency.observe(max((utcnow() - created).total_seconds(), 0.0))
            await delivery.ack()

        await self._guard(delivery, work)

    async def _available(self, delivery_id: int) -> datetime | None:
        # Pull deliveries arriving together are settled by one UPDATE (acked each after it commits).
        future: asyncio.Future[datetime | None] = asyncio.get_running_loop().create_future()
        self._pull_batch.append((delivery_id, future))
        if self._pull_flusher is None:
            self._pull_flusher = asyncio.get_running_loop().create_task(self._flush_pulls())
        else:
            self._pulls_arrived.set()
        return await future

    async def _flush_pulls(self) -> None:
        # One store connection for the UPDATEs of a run of batches, given back once pulls stop coming.
        try:
            async with self._repository.making_available() as make_available:
                while await self._pulls_waiting():
                    # Let the deliveries arriving meanwhile join the batch: one statement for many.
                    await asyncio.sleep(self._gather)
                    batch, self._pull_batch = self._pull_batch[:500], self._pull_batch[500:]
                    try:
                        moved = await make_available([i for i, _ in batch])
                    except StoreError as exc:
                        for _, future in batch:
                            if not future.done():
                                future.set_exception(exc)
                        continue
                    for delivery_id, future in batch:
                        if not future.done():
                            future.set_result(moved.get(delivery_id))
        finally:
            self._pull_flusher = None
        if self._pull_batch:  # arrived while the connection was given back
            self._pull_flusher = asyncio.get_running_loop().create_task(self._flush_pulls())

    async def _pulls_waiting(self) -> bool:
        """True once pull deliveries wait for the flusher; False after ``hold`` seconds without any."""
        if self._pull_batch:
            return True
        self._pulls_arrived.clear()
        try:
            async with asyncio.timeout(self._hold):
                await self._pulls_arrived.wait()
        except TimeoutError:
            return False
        return True

    async def _on_push(self, delivery: Delivery) -> None:
        async def work(delivery_id: int) -> None:
            token = secrets.token_hex(16)
            claim = await self._repository.claim_push(delivery_id, token, self._lease)
            if claim.outcome in ("settled", "missing"):
                await delivery.ack()
                return
            if claim.outcome == "busy":
                # Another worker holds the lease (or died holding it): look again after the shortest delay.
                await self._broker.retry_later(self._names.push, delivery.message, self._delays[0])
                await delivery.ack()
                return
            row = claim.row
            assert row is not None
            await self._attempt(delivery, row, token)

        await self._guard(delivery, work)

    async def _attempt(self, delivery: Delivery, row: dict[str, Any], token: str) -> None:
        delivery_id = row["id"]
        agency = (await self._directory.lookup([row["recipient"]])).get(row["recipient"])
        if agency is None or not agency.endpoint:
            # The agency no longer takes pushes: the delivery waits in its inbox instead.
            await self._repository.finish_push(delivery_id, token, state="available", available_at=utcnow())
            await delivery.ack()
            return
        body, headers = await self._body_for(row)
        try:
            await self._transport.push(PushRequest(agency.endpoint, body, headers))
        except DeliveryFailed as exc:
            attempts = row["attempts"]
            if exc.permanent or attempts > len(self._delays):
                await self._repository.finish_push(
                    delivery_id, token, state="dead", dead_at=utcnow(), last_error=str(exc)[:2000]
                )
                self._metrics.deliveries.labels("push", "dead").inc()
                self._metrics.alerts.labels(DEAD_LETTER_ALERT).inc()
                log.error(
                    "edocs delivery %s to %s dead-lettered after %d attempt(s): %s",
                    delivery_id,
                    row["recipient"],
                    attempts,
                    exc,
                )
                await delivery.nack(requeue=False)
                return
            delay = self._delays[attempts - 1]
            await self._repository.finish_push(
                delivery_id, token, state="retrying", last_error=str(exc)[:2000]
            )
            self._metrics.deliveries.labels("push", "retry").inc()
            log.warning(
                "edocs delivery %s to %s failed (attempt %d): %s; retrying in %d ms",
                delivery_id,
                row["recipient"],
                attempts,
                exc,
                delay,
            )
            await self._broker.retry_later(self._names.push, delivery.message, delay)
            await delivery.ack()
            return
        now = utcnow()
        if not await self._repository.finish_push(
            delivery_id, token, state="delivered", delivered_at=now, last_error=None
        ):
            log.warning(
                "edocs delivery %s: lease lost while pushing; another worker owns it now", delivery_id
            )
        self._metrics.deliveries.labels("push", "delivered").inc()
        created = aware(row["created_at"])
        if created is not None:
            self._metrics.to_inbox.labels("push").observe(max((now - created).total_seconds(), 0.0))
        await delivery.ack()


__all__ = [
    "DEAD_LETTER_ALERT",
    "DeliveryPublisher",
    "DeliveryWorkers",
    "EdocsMetrics",
    "EdocsTopology",
    "delivery_message",
]
