"""Consumers: a channel each (so prefetch is theirs alone), manual acks, re-subscribed on reconnect.

A delivery is acked or nacked on the channel it came from. Once that channel is gone (the
connection dropped and came back) its delivery tag means nothing: the broker has already requeued
the message and will redeliver it, so a late ack or nack is logged and dropped, never sent on the new
channel.
"""

import asyncio
import contextlib
import functools
import logging
import uuid
from collections.abc import Callable

import pika.exceptions as pe
from pika import spec
from pika.adapters.asyncio_connection import AsyncioConnection
from pika.channel import Channel

from hub.broker._rabbit_channel import AsyncChannel
from hub.broker._rabbit_codec import from_properties
from hub.broker.base import Consumer, Delivery, Handler, Message
from hub.errors import BrokerError

log = logging.getLogger(__name__)


class RabbitDelivery(Delivery):
    """A message received on `channel` under `delivery_tag`."""

    def __init__(
        self,
        channel: AsyncChannel,
        delivery_tag: int,
        message: Message,
        *,
        queue: str,
        exchange: str,
        routing_key: str,
        redelivered: bool,
    ) -> None:
        self._channel = channel
        self._delivery_tag = delivery_tag
        self._settled = False
        self.message = message
        self.queue = queue
        self.exchange = exchange
        self.routing_key = routing_key
        self.redelivered = redelivered

    async def ack(self) -> None:
        self._settle("ack", functools.partial(self._channel.raw.basic_ack, self._delivery_tag))

    async def nack(self, *, requeue: bool) -> None:
        self._settle(
            "nack", functools.partial(self._channel.raw.basic_nack, self._delivery_tag, requeue=requeue)
        )

    def _settle(self, verb: str, send: Callable[[], object]) -> None:
        if self._settled:
            return
        self._settled = True
        if self._channel.is_open:
            try:
                send()
            except pe.AMQPError:
                pass
            else:
                self._channel.flush()  # with the reply sent just before, if any
                return
        log.warning(
            "%s of message %r from %r dropped: its channel closed, RabbitMQ will redeliver it",
            verb,
            self.message.message_id,
            self.queue,
        )


class RabbitConsumer(Consumer):
    """A subscription that outlives connections: `subscribe` is called again after each reconnect."""

    def __init__(
        self,
        queue: str,
        handler: Handler,
        prefetch: int,
        *,
        grace: float,
        on_cancel: Callable[["RabbitConsumer"], None],
        on_channel_lost: Callable[["RabbitConsumer"], None],
    ) -> None:
        self.queue = queue
        self.handler = handler
        self.prefetch = prefetch
        self.active = True
        self._grace = grace
        self._on_cancel = on_cancel
        self._on_channel_lost = on_channel_lost
        self._channel: AsyncChannel | None = None
        self._tag = ""
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()

    @property
    def subscribed(self) -> bool:
        return self._channel is not None and self._channel.is_open

    async def subscribe(self, connection: AsyncioConnection) -> None:
        """Consume on a new channel of `connection` (no-op while already subscribed).

        Raises:
            BrokerError: the queue does not exist.
            BrokerConnectionError: the connection dropped meanwhile.
        """
        async with self._lock:
            if not self.active or self.subscribed:
                return
            channel = await AsyncChannel.open(connection)
            tag = f"lgsp.{uuid.uuid4().hex[:16]}"
            try:
                await channel.call(channel.raw.basic_qos, prefetch_count=self.prefetch)
                channel.raw.add_on_cancel_callback(functools.partial(self._on_broker_cancel, channel))
                on_message = functools.partial(self._on_message, channel)
                await channel.call(channel.raw.basic_consume, self.queue, on_message, consumer_tag=tag)
            except BaseException:
                await channel.close()
                raise
            self._channel, self._tag = channel, tag
            channel.on_close(functools.partial(self._on_channel_closed, channel))

    async def cancel(self) -> None:
        """Stop receiving, let running handlers finish (bounded), then close the channel.

        Whatever is still unacked then goes back to the queue, flagged redelivered.
        """
        if not self.active:
            return
        self.active = False
        self._on_cancel(self)
        async with self._lock:
            channel, self._channel = self._channel, None
        if channel is not None and channel.is_open:
            with contextlib.suppress(BrokerError):
                await channel.call(channel.raw.basic_cancel, self._tag)
        await self._drain()
        if channel is not None:
            await channel.close()

    async def _drain(self) -> None:
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=self._grace)
        if pending:
            log.warning(
                "%d handler(s) on %r still running after %g s; cancelling",
                len(pending),
                self.queue,
                self._grace,
            )
            for task in pending:
                task.cancel()
            await asyncio.wait(pending)

    def _on_message(
        self,
        channel: AsyncChannel,
        _raw: Channel,
        method: spec.Basic.Deliver,
        properties: spec.BasicProperties,
        body: bytes,
    ) -> None:
        delivery = RabbitDelivery(
            channel,
            method.delivery_tag,
            from_properties(properties, body),
            queue=self.queue,
            exchange=method.exchange,
            routing_key=method.routing_key,
            redelivered=method.redelivered,
        )
        task = channel.loop.create_task(self._handle(delivery))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, delivery: RabbitDelivery) -> None:
        try:
            await self.handler(delivery)
        except Exception:
            log.exception(
                "handler for %r raised on message %r; nacking it", delivery.queue, delivery.message.message_id
            )
            if not delivery.settled:
                await delivery.nack(requeue=not delivery.redelivered)

    def _on_broker_cancel(self, channel: AsyncChannel, _frame: object) -> None:
        # The queue was deleted (or the node went away): drop this channel; the next reconnect
        # re-declares the topology and subscribes again.
        log.warning("RabbitMQ cancelled the consumer on %r", self.queue)
        channel.close_soon()

    def _on_channel_closed(self, channel: AsyncChannel, reason: BrokerError) -> None:
        if self._channel is channel:
            self._channel = None
        if self.active and isinstance(reason.__cause__, pe.ChannelClosedByBroker):
            log.warning("RabbitMQ closed the consumer channel on %r (%s); re-subscribing", self.queue, reason)
            self._on_channel_lost(self)
