"""The embedded in-process broker: RabbitMQ's semantics for the zero-setup mode.

It is a first-class implementation of the Broker seam, held to the same contract suite as
RabbitMQ: topic/direct/fanout exchanges, durable-looking queues, manual acks with prefetch,
requeue with the redelivered flag, dead-lettering to `<queue>.dlq`, TTL retry queues that
dead-letter back, mandatory publishes and request/reply. Messages live in this process's memory:
a crash of the process loses them, which is why production runs on RabbitMQ.
"""

import asyncio
import collections
import contextlib
import functools
import itertools
import logging
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from hub.broker.base import (
    DEAD_LETTER_EXCHANGE,
    Broker,
    Consumer,
    Delivery,
    ExchangeSpec,
    Handler,
    Message,
    QueueSpec,
    Topology,
)
from hub.errors import BrokerConnectionError, BrokerError, ReplyTimeout, UnroutableError

log = logging.getLogger(__name__)

_REPLY_PREFIX = "amq.rabbitmq.reply-to."


@functools.lru_cache(maxsize=4096)
def _topic_match(pattern: str, routing_key: str) -> bool:
    """AMQP topic matching: words split on '.', '*' is exactly one word, '#' zero or more."""
    return _match_words(tuple(pattern.split(".")), tuple(routing_key.split(".")))


def _match_words(pattern: tuple[str, ...], key: tuple[str, ...]) -> bool:
    if not pattern:
        return not key
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_match_words(rest, key[i:]) for i in range(len(key) + 1))
    if not key:
        return False
    return (head == "*" or head == key[0]) and _match_words(rest, key[1:])


@dataclass(slots=True)
class _Entry:
    message: Message
    exchange: str
    routing_key: str
    redelivered: bool = False
    deaths: int = 0


@dataclass(eq=False)
class _Queue:
    name: str
    spec: QueueSpec | None = None
    ttl_ms: int | None = None
    dead_letter_exchange: str | None = None
    dead_letter_routing_key: str | None = None
    ready: collections.deque[_Entry] = field(default_factory=collections.deque)
    consumers: list["_EmbeddedConsumer"] = field(default_factory=list)


class _EmbeddedDelivery(Delivery):
    def __init__(
        self, broker: "EmbeddedBroker", queue: _Queue, entry: _Entry, consumer: "_EmbeddedConsumer | None"
    ):
        self._broker = broker
        self._queue = queue
        self._entry = entry
        self._consumer = consumer
        self._settled = False
        self.message = entry.message
        self.queue = queue.name
        self.exchange = entry.exchange
        self.routing_key = entry.routing_key
        self.redelivered = entry.redelivered

    async def ack(self) -> None:
        self._settle()

    async def nack(self, *, requeue: bool) -> None:
        if not self._settle():
            return
        if requeue:
            self._entry.redelivered = True
            self._queue.ready.appendleft(self._entry)
            self._broker._dispatch(self._queue)
        else:
            self._broker._dead_letter(self._queue, self._entry, reason="rejected")

    def _settle(self) -> bool:
        # A delivery already settled, or taken back when its consumer was cancelled, is stale:
        # acking it is a no-op, exactly like a stale delivery tag after a reconnect.
        if self._settled:
            return False
        self._settled = True
        if self._consumer is not None:
            if self not in self._consumer.unacked:
                return False
            self._consumer.unacked.remove(self)
            self._broker._dispatch(self._queue)
        else:
            if self not in self._broker._got:
                return False
            self._broker._got.discard(self)
        return True

    def _take_back(self) -> None:
        self._settled = True
        self._entry.redelivered = True


class _EmbeddedConsumer(Consumer):
    def __init__(self, broker: "EmbeddedBroker", queue: _Queue, handler: Handler, prefetch: int):
        self.broker = broker
        self.queue = queue
        self.handler = handler
        self.prefetch = prefetch
        self.unacked: list[_EmbeddedDelivery] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.active = True

    async def cancel(self) -> None:
        if not self.active:
            return
        self.active = False
        with contextlib.suppress(ValueError):
            self.queue.consumers.remove(self)
        # Requeue what this consumer still holds, in order, flagged as redelivered.
        for delivery in reversed(self.unacked):
            delivery._take_back()
            self.queue.ready.appendleft(delivery._entry)
        self.unacked.clear()
        self.broker._dispatch(self.queue)

    async def wait_idle(self, timeout: float) -> None:
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=timeout)


class EmbeddedBroker(Broker):
    """In-process broker with RabbitMQ's semantics (see the module docstring)."""

    def __init__(self) -> None:
        self._exchanges: dict[str, str] = {"": "direct", DEAD_LETTER_EXCHANGE: "direct"}
        self._bindings: dict[str, list[tuple[str, str]]] = collections.defaultdict(list)
        self._queues: dict[str, _Queue] = {}
        self._consumers: list[_EmbeddedConsumer] = []
        self._replies: dict[str, asyncio.Future[Message]] = {}
        self._got: set[_EmbeddedDelivery] = set()
        self._timers: set[asyncio.TimerHandle] = set()
        self._reply_token = uuid.uuid4().hex
        self._ids = itertools.count(1)
        self._open = False

    async def connect(self) -> None:
        self._open = True

    async def close(self) -> None:
        for consumer in list(self._consumers):
            await consumer.cancel()
        for consumer in list(self._consumers):
            await consumer.wait_idle(5.0)
        self._consumers.clear()
        for future in self._replies.values():
            if not future.done():
                future.set_exception(BrokerConnectionError("embedded broker closed before the reply arrived"))
        self._replies.clear()
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        self._open = False

    async def healthy(self) -> bool:
        return self._open

    def _require_open(self) -> None:
        if not self._open:
            raise BrokerConnectionError("embedded broker is not connected")

    async def declare(self, topology: Topology) -> None:
        self._require_open()
        for exchange in topology.exchanges:
            self._declare_exchange(exchange)
        for spec in topology.queues:
            self._declare_queue(spec)

    def _declare_exchange(self, exchange: ExchangeSpec) -> None:
        self._exchanges.setdefault(exchange.name, exchange.type)

    def _declare_queue(self, spec: QueueSpec) -> None:
        queue = self._queues.get(spec.name) or _Queue(spec.name)
        queue.spec = spec
        self._queues[spec.name] = queue
        if spec.dead_letter:
            queue.dead_letter_exchange = DEAD_LETTER_EXCHANGE
            queue.dead_letter_routing_key = spec.name
            self._queues.setdefault(spec.dlq_name, _Queue(spec.dlq_name))
            self._bind(DEAD_LETTER_EXCHANGE, spec.name, spec.dlq_name)
        for delay in spec.retry_delays_ms:
            name = spec.retry_queue_name(delay)
            self._queues.setdefault(
                name, _Queue(name, ttl_ms=delay, dead_letter_exchange="", dead_letter_routing_key=spec.name)
            )
        for exchange, routing_key in spec.bindings:
            if exchange not in self._exchanges:
                self._exchanges[exchange] = "topic"
            self._bind(exchange, routing_key, spec.name)

    def _bind(self, exchange: str, routing_key: str, queue: str) -> None:
        bindings = self._bindings[exchange]
        if (routing_key, queue) not in bindings:
            bindings.append((routing_key, queue))

    def _route(self, exchange: str, routing_key: str) -> list[_Queue]:
        if exchange == "":
            queue = self._queues.get(routing_key)
            return [queue] if queue else []
        kind = self._exchanges.get(exchange)
        if kind is None:
            return []
        names: dict[str, None] = {}
        for key, queue_name in self._bindings.get(exchange, ()):
            if (
                kind == "fanout"
                or (kind == "direct" and key == routing_key)
                or (kind == "topic" and _topic_match(key, routing_key))
            ):
                names[queue_name] = None
        return [self._queues[n] for n in names if n in self._queues]

    async def publish(
        self, exchange: str, routing_key: str, message: Message, *, mandatory: bool = True
    ) -> None:
        self._require_open()
        if exchange == "" and routing_key.startswith(_REPLY_PREFIX):
            self._resolve_reply(message)
            return
        if exchange not in self._exchanges:
            raise BrokerError(f"no exchange {exchange!r} (channel closed: NOT_FOUND)")
        queues = self._route(exchange, routing_key)
        if not queues:
            if mandatory:
                raise UnroutableError(
                    f"no queue is bound to exchange {exchange!r} for routing key {routing_key!r}",
                    exchange=exchange,
                    routing_key=routing_key,
                )
            return
        for queue in queues:
            self._enqueue(queue, _Entry(message, exchange, routing_key))

    def _enqueue(self, queue: _Queue, entry: _Entry) -> None:
        queue.ready.append(entry)
        ttl = queue.ttl_ms
        if entry.message.expiration is not None:
            ttl = (
                min(ttl, int(entry.message.expiration)) if ttl is not None else int(entry.message.expiration)
            )
        if ttl is not None:
            self._schedule_expiry(queue, entry, ttl)
        self._dispatch(queue)

    def _schedule_expiry(self, queue: _Queue, entry: _Entry, ttl_ms: int) -> None:
        loop = asyncio.get_running_loop()

        def expire() -> None:
            self._timers.discard(handle)
            try:
                queue.ready.remove(entry)
            except ValueError:
                return  # already delivered
            self._dead_letter(queue, entry, reason="expired")

        handle = loop.call_later(ttl_ms / 1000.0, expire)
        self._timers.add(handle)

    def _dead_letter(self, queue: _Queue, entry: _Entry, *, reason: str) -> None:
        if queue.dead_letter_exchange is None:
            return  # no DLX: RabbitMQ drops it too
        deaths = list(entry.message.headers.get("x-death", []))
        for death in deaths:
            if death.get("queue") == queue.name and death.get("reason") == reason:
                death["count"] = int(death.get("count", 0)) + 1
                break
        else:
            deaths.insert(0, {"queue": queue.name, "reason": reason, "count": 1, "exchange": entry.exchange})
        message = replace(
            entry.message, headers={**entry.message.headers, "x-death": deaths}, expiration=None
        )
        routing_key = queue.dead_letter_routing_key or entry.routing_key
        for target in self._route(queue.dead_letter_exchange, routing_key):
            self._enqueue(target, _Entry(message, queue.dead_letter_exchange, routing_key))

    def _dispatch(self, queue: _Queue) -> None:
        while queue.ready:
            consumer = self._pick_consumer(queue)
            if consumer is None:
                return
            entry = queue.ready.popleft()
            delivery = _EmbeddedDelivery(self, queue, entry, consumer)
            consumer.unacked.append(delivery)
            task = asyncio.get_running_loop().create_task(self._run_handler(consumer, delivery))
            consumer.tasks.add(task)
            task.add_done_callback(consumer.tasks.discard)

    def _pick_consumer(self, queue: _Queue) -> _EmbeddedConsumer | None:
        # Round-robin among consumers with prefetch capacity left.
        for _ in range(len(queue.consumers)):
            consumer = queue.consumers.pop(0)
            queue.consumers.append(consumer)
            if consumer.active and len(consumer.unacked) < consumer.prefetch:
                return consumer
        return None

    async def _run_handler(self, consumer: _EmbeddedConsumer, delivery: _EmbeddedDelivery) -> None:
        try:
            await consumer.handler(delivery)
        except Exception:
            log.exception(
                "handler for queue %s raised; nacking message %s", delivery.queue, delivery.message.message_id
            )
            if not delivery.settled:
                await delivery.nack(requeue=not delivery.redelivered)

    async def consume(self, queue: str, handler: Handler, *, prefetch: int = 32) -> Consumer:
        self._require_open()
        target = self._queues.get(queue)
        if target is None:
            raise BrokerError(f"no queue {queue!r} (channel closed: NOT_FOUND)")
        consumer = _EmbeddedConsumer(self, target, handler, max(1, prefetch))
        target.consumers.append(consumer)
        self._consumers.append(consumer)
        self._dispatch(target)
        return consumer

    async def request(self, exchange: str, routing_key: str, message: Message, *, timeout: float) -> Message:
        self._require_open()
        correlation_id = message.correlation_id or f"rpc-{next(self._ids)}"
        if (
            correlation_id in self._replies
        ):  # two callers reusing one id: as RabbitMQ, give this one a fresh id
            correlation_id = f"rpc-{next(self._ids)}"
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._replies[correlation_id] = future
        try:
            await self.publish(
                exchange,
                routing_key,
                replace(message, correlation_id=correlation_id, reply_to=_REPLY_PREFIX + self._reply_token),
            )
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise ReplyTimeout(
                f"no reply from {routing_key!r} within {timeout:g} s", timeout=timeout
            ) from None
        finally:
            self._replies.pop(correlation_id, None)

    def _resolve_reply(self, message: Message) -> None:
        future = self._replies.get(message.correlation_id or "")
        if future is not None and not future.done():
            future.set_result(message)

    async def reply(self, delivery: Delivery, message: Message) -> None:
        reply_to = delivery.message.reply_to
        if not reply_to:
            return
        await self.publish(
            "", reply_to, replace(message, correlation_id=delivery.message.correlation_id), mandatory=False
        )

    async def get(self, queue: str) -> Delivery | None:
        self._require_open()
        target = self._queues.get(queue)
        if target is None:
            raise BrokerError(f"no queue {queue!r} (channel closed: NOT_FOUND)")
        if not target.ready:
            return None
        delivery = _EmbeddedDelivery(self, target, target.ready.popleft(), None)
        self._got.add(delivery)
        return delivery

    async def message_count(self, queue: str) -> int:
        self._require_open()
        target = self._queues.get(queue)
        if target is None:
            raise BrokerError(f"no queue {queue!r} (channel closed: NOT_FOUND)")
        return len(target.ready)

    async def purge(self, queue: str) -> None:
        self._require_open()
        target = self._queues.get(queue)
        if target is not None:
            target.ready.clear()

    def snapshot(self) -> dict[str, Any]:
        """Queue depths and consumer counts, for the CLI and tests."""
        return {
            name: {
                "ready": len(q.ready),
                "consumers": len(q.consumers),
                "unacked": sum(len(c.unacked) for c in q.consumers),
            }
            for name, q in self._queues.items()
        }
