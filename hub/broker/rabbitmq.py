"""The Broker seam on RabbitMQ, through pika's asyncio adapter on the running event loop.

One connection, supervised (`_rabbit_link`): it reconnects with bounded, jittered back-off, then
re-declares the topology declared so far and re-subscribes every consumer. On it:

- a publisher channel in confirm mode (`_rabbit_publisher`, `_rabbit_confirms`): publishes are
  pipelined, each awaits its own confirm; it also consumes direct reply-to for `request`;
- one channel per consumer (`_rabbit_consumer`), with its own prefetch;
- a channel for direct replies, without confirms (see `reply`);
- an operations channel for declarations, passive checks and purges, and a channel for `get`
  (both re-opened on demand: RabbitMQ closes a channel on a missing queue or exchange).

A publish to an exchange this connection has not seen yet is preceded by a passive check, so a
typo fails that one publish instead of closing the shared publisher channel under everyone else.
"""

import asyncio
import functools
import logging
import os
import socket
import uuid
from collections.abc import Sequence

import pika
from pika.adapters.asyncio_connection import AsyncioConnection

from hub.broker._rabbit_channel import AsyncChannel, ChannelSlot
from hub.broker._rabbit_codec import from_properties, to_properties
from hub.broker._rabbit_consumer import ChannelAcks, RabbitConsumer, RabbitDelivery
from hub.broker._rabbit_errors import pika_errors, reply_code
from hub.broker._rabbit_link import Link
from hub.broker._rabbit_publisher import REPLY_TO, PublisherChannel
from hub.broker._rabbit_topology import NOT_FOUND, declare_topology, exchange_exists
from hub.broker.base import Broker, Consumer, Delivery, Handler, Message, Topology
from hub.errors import BrokerConnectionError, BrokerError, ConfigError, ReplyTimeout

log = logging.getLogger(__name__)

DEFAULT_RECONNECT_DELAYS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0)


def _expire_reply(reply: "asyncio.Future[Message]", exchange: str, routing_key: str, timeout: float) -> None:
    if not reply.done():
        reply.set_exception(
            ReplyTimeout(f"no reply from {exchange!r}/{routing_key!r} within {timeout:g} s", timeout=timeout)
        )


def _retrieve(future: "asyncio.Future[None]") -> None:
    # A confirm nobody awaits any more (its publish_many was cancelled): its failure is read here.
    if not future.cancelled():
        future.exception()


def _fail_reply_on_failed_confirm(reply: "asyncio.Future[Message]", confirm: "asyncio.Future[None]") -> None:
    if confirm.cancelled():
        return
    error = confirm.exception()  # retrieved here even when the reply came first
    if error is not None and not reply.done():
        reply.set_exception(error)


class RabbitBroker(Broker):
    """RabbitMQ through pika's AsyncioConnection (see the module docstring).

    Args:
        url: ``amqp://user:password@host:port/vhost`` (or ``amqps://``).
        reconnect_delays: seconds between reconnect attempts; the last one repeats forever.
        connect_timeout: bound on one connection attempt (TCP + TLS + AMQP handshake).
        heartbeat: AMQP heartbeat in seconds (0 turns it off).
        reconnect_wait: how long an operation waits for a reconnect before BrokerConnectionError.
        close_timeout: how long `close` and `Consumer.cancel` wait for running handlers and
            unconfirmed publishes.
        quorum: declare quorum queues instead of classic ones.
        connection_name: shown by RabbitMQ (``rabbitmqctl list_connections client_properties``);
            by default ``lgsp-hub <host>:<pid>``, so an operator can tell the hub's processes apart.
    """

    def __init__(
        self,
        url: str,
        *,
        reconnect_delays: Sequence[float] = DEFAULT_RECONNECT_DELAYS,
        connect_timeout: float = 5.0,
        heartbeat: int = 30,
        reconnect_wait: float = 10.0,
        close_timeout: float = 10.0,
        quorum: bool = False,
        connection_name: str | None = None,
    ) -> None:
        if connection_name is None:
            connection_name = f"lgsp-hub {socket.gethostname()}:{os.getpid()}"
        if not reconnect_delays or min(reconnect_delays) < 0:
            raise ConfigError(
                "reconnect_delays: give at least one delay, none negative", key="reconnect_delays"
            )
        try:
            parameters = pika.URLParameters(url)
            parameters.heartbeat = heartbeat
            parameters.connection_attempts = 1
            parameters.socket_timeout = connect_timeout
            parameters.stack_timeout = connect_timeout
            # A broker blocking publishers (resource alarm) longer than this drops the connection,
            # so publishes in flight fail with BrokerConnectionError instead of hanging.
            parameters.blocked_connection_timeout = max(60.0, 2.0 * heartbeat)
            parameters.client_properties = {"connection_name": connection_name}
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"broker.url: {exc}", key="broker.url") from exc
        self._parameters = parameters
        self.connection_name = connection_name
        self._reconnect_delays = tuple(reconnect_delays)
        self._connect_timeout = connect_timeout
        self._reconnect_wait = reconnect_wait
        self._close_timeout = close_timeout
        self._quorum = quorum
        self._link: Link | None = None
        self._closing = False
        self._topology = Topology()
        self._known_exchanges: set[str] = {""}
        self._consumers: list[RabbitConsumer] = []
        self._background: set[asyncio.Task[None]] = set()
        self._publisher: ChannelSlot[PublisherChannel] = ChannelSlot(PublisherChannel.open)
        self._ops: ChannelSlot[AsyncChannel] = ChannelSlot(AsyncChannel.open)
        self._getter: ChannelSlot[AsyncChannel] = ChannelSlot(AsyncChannel.open)
        self._replier: ChannelSlot[AsyncChannel] = ChannelSlot(AsyncChannel.open)

    # -- lifecycle ---------------------------------------------------------------------------

    async def connect(self) -> None:
        if self._link is not None:
            return
        link = Link(
            self._parameters,
            on_connected=self._on_connected,
            reconnect_delays=self._reconnect_delays,
            connect_timeout=self._connect_timeout,
        )
        self._closing = False
        await link.start()
        self._link = link

    async def close(self) -> None:
        link = self._link
        if link is None:
            return
        self._closing = True
        consumers, self._consumers = self._consumers, []
        await asyncio.gather(*(consumer.cancel() for consumer in consumers))
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        publisher = self._publisher.value
        if publisher is not None and publisher.is_open:
            await publisher.close(self._close_timeout)
        await link.close()
        self._link = None

    async def healthy(self) -> bool:
        publisher = self._publisher.value
        return self._link is not None and self._link.is_up and publisher is not None and publisher.is_open

    async def _on_connected(self, connection: AsyncioConnection) -> None:
        # Runs for the first connection and after every reconnect, before callers may use it.
        await self._publisher.get(connection)
        self._known_exchanges = {""}
        if self._topology.exchanges or self._topology.queues:
            try:
                await self._declare_on(connection, self._topology)
            except BrokerConnectionError:
                raise
            except BrokerError as exc:
                log.error("re-declaring the topology after a reconnect failed: %s", exc)
        for consumer in list(self._consumers):
            try:
                await consumer.subscribe(connection)
            except BrokerConnectionError:
                raise
            except BrokerError as exc:
                log.error("re-subscribing to %r after a reconnect failed: %s", consumer.queue, exc)

    async def _connection(self) -> AsyncioConnection:
        if self._link is None:
            raise BrokerConnectionError("the RabbitMQ broker is not connected (call connect() first)")
        return await self._link.ready(self._reconnect_wait)

    # -- topology ----------------------------------------------------------------------------

    async def declare(self, topology: Topology) -> None:
        connection = await self._connection()
        await self._declare_on(connection, topology)
        self._topology = self._topology.merge(topology)

    async def _declare_on(self, connection: AsyncioConnection, topology: Topology) -> None:
        exchanges = await declare_topology(lambda: self._ops.get(connection), topology, quorum=self._quorum)
        self._known_exchanges |= exchanges

    async def _require_exchange(self, exchange: str) -> None:
        channel = await self._ops.get(await self._connection())
        if not await exchange_exists(channel, exchange):
            raise BrokerError(f"no exchange {exchange!r} on RabbitMQ (404 NOT_FOUND)")
        self._known_exchanges.add(exchange)

    # -- publishing --------------------------------------------------------------------------

    async def _publisher_channel(self, exchange: str) -> PublisherChannel:
        if exchange not in self._known_exchanges:
            await self._require_exchange(exchange)
        publisher = self._publisher.value
        if publisher is not None and publisher.is_open and self._link is not None and self._link.is_up:
            return publisher
        return await self._publisher.get(await self._connection())

    async def publish(
        self, exchange: str, routing_key: str, message: Message, *, mandatory: bool = True
    ) -> None:
        publisher = await self._publisher_channel(exchange)
        await publisher.publish(exchange, routing_key, to_properties(message), message.body, mandatory)

    async def publish_many(
        self, exchange: str, messages: Sequence[tuple[str, Message]], *, mandatory: bool = True
    ) -> list[BrokerError | None]:
        # Every message goes out before the first confirm is awaited, and the confirms are plain
        # futures awaited in turn: no task per message, as gathering publish() coroutines would make.
        try:
            publisher = await self._publisher_channel(exchange)
        except BrokerError as exc:
            return [exc] * len(messages)
        pending: list[asyncio.Future[None] | BrokerError] = []
        for routing_key, message in messages:
            try:
                properties = to_properties(message)
                pending.append(publisher.publish(exchange, routing_key, properties, message.body, mandatory))
            except BrokerError as exc:
                pending.append(exc)
        outcomes: list[BrokerError | None] = []
        try:
            for item in pending:
                if isinstance(item, BrokerError):
                    outcomes.append(item)
                    continue
                try:
                    await item
                except BrokerError as exc:
                    outcomes.append(exc)
                else:
                    outcomes.append(None)
        finally:
            # Cancelled while waiting: the confirms not awaited still settle; nobody is left to read them.
            for item in pending[len(outcomes) :]:
                if isinstance(item, asyncio.Future):
                    item.add_done_callback(_retrieve)
        return outcomes

    async def request(self, exchange: str, routing_key: str, message: Message, *, timeout: float) -> Message:
        publisher = await self._publisher_channel(exchange)
        correlation_id = message.correlation_id or uuid.uuid4().hex
        if publisher.expects_reply(correlation_id):
            correlation_id = uuid.uuid4().hex  # two requests in flight must not share a reply
        reply = publisher.expect_reply(correlation_id)
        try:
            properties = to_properties(message, reply_to=REPLY_TO, correlation_id=correlation_id)
            confirmed = publisher.publish(exchange, routing_key, properties, message.body, True)
            # A reply proves the request was routed, so it is returned as soon as it arrives,
            # confirmed or not: a persistent request is confirmed only once it is on disk or the
            # worker has acked it, after replying. Only a failed confirm (unroutable, nacked,
            # connection lost) matters, and it fails the reply.
            confirmed.add_done_callback(functools.partial(_fail_reply_on_failed_confirm, reply))
            # One timer that fails the reply future, not asyncio.timeout's context manager around the
            # wait (its Timeout object, task bookkeeping and rescheduling cost ~2 % of a request).
            expiry = publisher.channel.loop.call_later(
                timeout, _expire_reply, reply, exchange, routing_key, timeout
            )
            try:
                return await reply
            finally:
                expiry.cancel()
        finally:
            publisher.forget_reply(correlation_id)
            if reply.done() and not reply.cancelled():
                reply.exception()  # retrieved: the confirm's error is the one raised

    async def reply(self, delivery: Delivery, message: Message) -> None:
        reply_to = delivery.message.reply_to
        if not reply_to:
            log.warning(
                "message %r from %r asked for no reply; reply dropped",
                delivery.message.message_id,
                delivery.queue,
            )
            return
        properties = to_properties(message, correlation_id=delivery.message.correlation_id)
        # Replies go out on a channel without confirms: RabbitMQ confirms a direct reply even when
        # the requester is gone and the reply is dropped, so a confirm guarantees nothing here, and
        # waiting for it cost the worker a broker round trip before it could ack.
        channel = self._replier.value
        if channel is None or not channel.is_open or self._link is None or not self._link.is_up:
            channel = await self._replier.get(await self._connection())
        with pika_errors(f"replying to {reply_to!r}"):
            channel.raw.basic_publish("", reply_to, message.body, properties, False)

    # -- consuming ---------------------------------------------------------------------------

    async def consume(self, queue: str, handler: Handler, *, prefetch: int = 32) -> Consumer:
        if self._closing:
            raise BrokerConnectionError("the RabbitMQ broker is closing")
        connection = await self._connection()
        consumer = RabbitConsumer(
            queue,
            handler,
            max(1, prefetch),
            grace=self._close_timeout,
            on_cancel=self._forget_consumer,
            on_channel_lost=self._resubscribe_later,
        )
        await consumer.subscribe(connection)
        self._consumers.append(consumer)
        return consumer

    def _forget_consumer(self, consumer: RabbitConsumer) -> None:
        if consumer in self._consumers:
            self._consumers.remove(consumer)

    def _resubscribe_later(self, consumer: RabbitConsumer) -> None:
        if self._closing:
            return
        task = asyncio.get_running_loop().create_task(self._resubscribe(consumer))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _resubscribe(self, consumer: RabbitConsumer) -> None:
        # Only the consumer's channel was closed (the connection is fine): back off, then retry.
        for delay in self._reconnect_delays:
            await asyncio.sleep(delay)
            if not consumer.active or consumer.subscribed:
                return
            try:
                await consumer.subscribe(await self._connection())
                return
            except BrokerError as exc:
                log.warning("re-subscribing to %r failed: %s", consumer.queue, exc)
        log.error("gave up re-subscribing to %r; the next reconnect will try again", consumer.queue)

    # -- queue operations --------------------------------------------------------------------

    async def get(self, queue: str) -> Delivery | None:
        channel = await self._getter.get(await self._connection())
        result = await channel.get(queue)
        if result is None:
            return None
        method, properties, body = result
        return RabbitDelivery(
            ChannelAcks(channel, queue),  # nothing announced: its ack goes alone
            method.delivery_tag,
            from_properties(properties, body),
            queue=queue,
            exchange=method.exchange,
            routing_key=method.routing_key,
            redelivered=method.redelivered,
        )

    async def message_count(self, queue: str) -> int:
        channel = await self._ops.get(await self._connection())
        frame = await channel.call(channel.raw.queue_declare, queue, passive=True)
        return int(frame.method.message_count)

    async def purge(self, queue: str) -> None:
        channel = await self._ops.get(await self._connection())
        try:
            await channel.call(channel.raw.queue_purge, queue)
        except BrokerError as exc:
            if reply_code(exc) != NOT_FOUND:
                raise
