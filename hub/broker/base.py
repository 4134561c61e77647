"""The broker seam: topology, confirmed publish, manual-ack consume, request/reply.

Two implementations pass one contract suite (tests/hub/broker/test_contract.py): RabbitMQ through
pika's asyncio adapter (`hub.broker.rabbitmq.RabbitBroker`) and the embedded in-process broker
(`hub.broker.embedded.EmbeddedBroker`) used by the zero-setup mode.

Semantics both honour:
- `publish` returns only once the broker has taken responsibility (publisher confirm); a mandatory
  publish that matches no queue raises `UnroutableError`; a dropped connection fails in-flight
  publishes with `BrokerConnectionError` so callers can retry.
- `consume` delivers at most `prefetch` unacknowledged messages; the handler acks or nacks each
  `Delivery`. A handler that raises gets its message nacked: requeued the first time, dead-lettered
  when it was already redelivered. A consumer (or its connection) that goes away requeues its
  unacked messages, which come back with `redelivered=True`.
- `nack(requeue=False)` dead-letters to the queue's DLQ (`<queue>.dlq`) when the queue has one.
- A queue's delayed-retry queues (`<queue>.retry.<ms>`) hold a message for their TTL and then
  dead-letter it back to the queue; `retry_later` publishes there.
- `request` publishes with a reply address and waits for the reply (RabbitMQ direct reply-to);
  `reply` answers a delivery that asked for one. No reply in time raises `ReplyTimeout`.
"""

import abc
import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from hub.errors import BrokerError

DEAD_LETTER_EXCHANGE = "lgsp.dlx"


@dataclass(frozen=True, slots=True)
class Message:
    """An AMQP message: body plus the properties the hub uses.

    Header values must be AMQP table types (str, bytes, int, bool, nested tables and lists);
    RabbitMQ refuses floats. A request's correlation id is replaced by a fresh one when another
    request in flight already uses it.
    """

    body: bytes
    content_type: str | None = None
    message_id: str | None = None
    correlation_id: str | None = None
    reply_to: str | None = None
    headers: Mapping[str, Any] = field(default_factory=dict)
    timestamp: int | None = None
    type: str | None = None
    expiration: str | None = None
    persistent: bool = True

    def with_headers(self, **extra: Any) -> "Message":
        return replace(self, headers={**self.headers, **extra})


@dataclass(frozen=True, slots=True)
class ExchangeSpec:
    name: str
    type: Literal["topic", "direct", "fanout"] = "topic"


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """A durable queue with its bindings, optional DLQ and delayed-retry queues."""

    name: str
    bindings: tuple[tuple[str, str], ...] = ()  # (exchange, routing key)
    dead_letter: bool = True
    retry_delays_ms: tuple[int, ...] = ()

    @property
    def dlq_name(self) -> str:
        return f"{self.name}.dlq"

    def retry_queue_name(self, delay_ms: int) -> str:
        return f"{self.name}.retry.{delay_ms}"


@dataclass(frozen=True, slots=True)
class Topology:
    exchanges: tuple[ExchangeSpec, ...] = ()
    queues: tuple[QueueSpec, ...] = ()

    def merge(self, other: "Topology") -> "Topology":
        exchanges = dict.fromkeys(self.exchanges + other.exchanges)
        queues = {q.name: q for q in self.queues + other.queues}
        return Topology(tuple(exchanges), tuple(queues.values()))


class Delivery(abc.ABC):
    """One message handed to a consumer; ack or nack it exactly once."""

    message: Message
    queue: str
    exchange: str
    routing_key: str
    redelivered: bool

    @abc.abstractmethod
    async def ack(self) -> None:
        """Acknowledge: the work is done, the broker may forget the message."""

    @abc.abstractmethod
    async def nack(self, *, requeue: bool) -> None:
        """Refuse: requeue it (redelivered later) or dead-letter it."""

    @property
    def settled(self) -> bool:
        return bool(getattr(self, "_settled", False))


Handler = Callable[[Delivery], Awaitable[None]]


class Consumer(abc.ABC):
    """A running subscription."""

    @abc.abstractmethod
    async def cancel(self) -> None:
        """Stop receiving; unacked messages are requeued by the broker."""


class Broker(abc.ABC):
    """The broker seam (see the module docstring for the semantics)."""

    @abc.abstractmethod
    async def connect(self) -> None:
        """Open the connection (idempotent).

        Raises:
            BrokerConnectionError: the broker cannot be reached.
        """

    @abc.abstractmethod
    async def close(self) -> None:
        """Cancel consumers and close; in-flight publishes fail with BrokerConnectionError."""

    @abc.abstractmethod
    async def declare(self, topology: Topology) -> None:
        """Declare exchanges, queues, DLQs and retry queues idempotently (re-declared on reconnect)."""

    @abc.abstractmethod
    async def publish(
        self, exchange: str, routing_key: str, message: Message, *, mandatory: bool = True
    ) -> None:
        """Publish and wait for the broker's confirm.

        Raises:
            UnroutableError: mandatory and no queue is bound for the routing key.
            PublishNackedError: the broker refused the message.
            BrokerConnectionError: the connection dropped before the confirm.
        """

    async def publish_many(
        self, exchange: str, messages: Sequence[tuple[str, Message]], *, mandatory: bool = True
    ) -> list[BrokerError | None]:
        """Publish ``(routing_key, message)`` pairs to one exchange and wait for every confirm.

        Returns one outcome per message, in order: None when the broker confirmed it, or the
        BrokerError it failed with (``UnroutableError``, ``PublishNackedError``,
        ``BrokerConnectionError``, ...); one failure does not stop the others. Any other exception
        propagates. This implementation publishes them concurrently through ``publish``.
        """
        outcomes = await asyncio.gather(
            *(self.publish(exchange, key, message, mandatory=mandatory) for key, message in messages),
            return_exceptions=True,
        )
        return [_broker_outcome(outcome) for outcome in outcomes]

    @abc.abstractmethod
    async def consume(self, queue: str, handler: Handler, *, prefetch: int = 32) -> Consumer:
        """Subscribe `handler` to `queue` with manual acks (re-subscribed after a reconnect)."""

    @abc.abstractmethod
    async def request(self, exchange: str, routing_key: str, message: Message, *, timeout: float) -> Message:
        """Publish a request and wait for its reply.

        Raises:
            ReplyTimeout: no reply within `timeout` seconds.
            UnroutableError, PublishNackedError, BrokerConnectionError: as for publish.
        """

    @abc.abstractmethod
    async def reply(self, delivery: Delivery, message: Message) -> None:
        """Send `message` as the reply to `delivery` (its reply_to and correlation id)."""

    async def retry_later(self, queue: QueueSpec, message: Message, delay_ms: int) -> None:
        """Publish `message` to the queue's retry queue for `delay_ms`; it comes back afterwards."""
        if delay_ms not in queue.retry_delays_ms:
            raise ValueError(f"queue {queue.name!r} has no retry queue for {delay_ms} ms")
        await self.publish("", queue.retry_queue_name(delay_ms), message)

    @abc.abstractmethod
    async def get(self, queue: str) -> Delivery | None:
        """Fetch one message without a subscription (manual ack), or None when the queue is empty."""

    @abc.abstractmethod
    async def message_count(self, queue: str) -> int:
        """Messages ready in `queue` (not counting unacked ones)."""

    @abc.abstractmethod
    async def purge(self, queue: str) -> None:
        """Drop every ready message in `queue`."""

    @abc.abstractmethod
    async def healthy(self) -> bool:
        """True when the broker is connected and usable."""


__all__ = [
    "DEAD_LETTER_EXCHANGE",
    "Broker",
    "Consumer",
    "Delivery",
    "ExchangeSpec",
    "Handler",
    "Message",
    "QueueSpec",
    "Topology",
]


def _broker_outcome(outcome: object) -> BrokerError | None:
    # A publish's outcome as publish_many reports it: None, a BrokerError, or anything else raised.
    if outcome is None or isinstance(outcome, BrokerError):
        return outcome
    if isinstance(outcome, BaseException):
        raise outcome
    return None
