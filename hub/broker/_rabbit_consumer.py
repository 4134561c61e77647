"""Consumers: a channel each (so prefetch is theirs alone), manual acks, re-subscribed on reconnect.

A delivery is acked or nacked on the channel it came from. Once that channel is gone (the
connection dropped and came back) its delivery tag means nothing: the broker has already requeued
the message and will redeliver it, so a late ack or nack is logged and dropped, never sent on the new
channel.

Acks requested in one loop turn on one consumer channel are coalesced (`ChannelAcks`): the first goes
out at once (with a reply sent just before it, as a worker's is), the others at the end of the turn as
one ``basic.ack(multiple)`` up to the last tag of the contiguous run of settled deliveries at the
head of the channel's unsettled ones, and one ack each for those past a delivery still in work. A
nack is never coalesced: the acks requested before it go first, then the nack alone. Acks still held
when the channel closes under them are dropped like a late ack (the broker redelivers those
messages); the consumer's own close sends them first.
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


def _dropped(verb: str, message_id: str | None, queue: str) -> None:
    log.warning(
        "%s of message %r from %r dropped: its channel closed, RabbitMQ will redeliver it",
        verb,
        message_id,
        queue,
    )


class ChannelAcks:
    """Settles the deliveries of one channel, its acks coalesced per loop turn (see the module docstring).

    A multiple ack covers every unsettled delivery of the channel up to its tag, so every delivery
    received on a channel whose acks are coalesced must be announced with `delivered` first (a
    consumer's channel carries nothing else); a tag never announced never extends a run.
    """

    def __init__(self, channel: AsyncChannel, queue: str) -> None:
        self.channel = channel
        self._queue = queue
        self._unsettled: dict[int, None] = {}  # delivered, not settled with the broker yet, in tag order
        self._acked: dict[int, str | None] = {}  # acks asked for and not sent yet: tag -> message id
        self._turn = False  # an ack went out at once this loop turn; later ones wait for its end

    def delivered(self, tag: int) -> None:
        self._unsettled[tag] = None

    def ack(self, tag: int, message_id: str | None) -> bool:
        """Ack `tag` now or at the end of this loop turn; False when the channel is closed."""
        if not self.channel.is_open:
            return False
        self._acked[tag] = message_id
        if not self._turn:
            self._turn = True
            self.channel.at_end_of_turn(self._end_turn)  # the later acks join the turn's one write
            self.send()
        return True

    def nack(self, tag: int, *, requeue: bool) -> bool:
        """Nack `tag` alone, after the acks asked for before it; False when the channel is closed."""
        if not self.channel.is_open:
            return False
        self.send()
        self._unsettled.pop(tag, None)
        try:
            self.channel.raw.basic_nack(tag, requeue=requeue)
        except pe.AMQPError:
            return False
        self.channel.flush()
        return True

    def send(self) -> None:
        """Send the acks asked for so far (the consumer calls it before closing the channel)."""
        acked, self._acked = self._acked, {}
        if not acked:
            return
        # The longest run of acked tags at the head of the unsettled ones goes as one multiple ack;
        # past the first tag still in work, each ack goes alone.
        last, run = 0, 0
        for tag in self._unsettled:
            if tag not in acked:
                break
            last, run = tag, run + 1
        for tag in acked:
            self._unsettled.pop(tag, None)
        if self.channel.is_open:
            try:
                if run:
                    self.channel.raw.basic_ack(last, multiple=run > 1)
                for tag in acked:
                    if tag > last:
                        self.channel.raw.basic_ack(tag)
            except pe.AMQPError:
                pass
            else:
                self.channel.flush()  # with the reply sent just before, if any
                return
        for message_id in acked.values():
            _dropped("ack", message_id, self._queue)

    def _end_turn(self) -> None:
        self._turn = False
        self.send()


class RabbitDelivery(Delivery):
    """A message received under `delivery_tag` on the channel `acks` settles."""

    def __init__(
        self,
        acks: ChannelAcks,
        delivery_tag: int,
        message: Message,
        *,
        queue: str,
        exchange: str,
        routing_key: str,
        redelivered: bool,
    ) -> None:
        self._acks = acks
        self._delivery_tag = delivery_tag
        self._settled = False
        self.message = message
        self.queue = queue
        self.exchange = exchange
        self.routing_key = routing_key
        self.redelivered = redelivered

    async def ack(self) -> None:
        if not self._settled:
            self._settled = True
            if not self._acks.ack(self._delivery_tag, self.message.message_id):
                _dropped("ack", self.message.message_id, self.queue)

    async def nack(self, *, requeue: bool) -> None:
        if not self._settled:
            self._settled = True
            if not self._acks.nack(self._delivery_tag, requeue=requeue):
                _dropped("nack", self.message.message_id, self.queue)


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
        self._acks: ChannelAcks | None = None
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
            acks = ChannelAcks(channel, self.queue)
            tag = f"lgsp.{uuid.uuid4().hex[:16]}"
            try:
                await channel.call(channel.raw.basic_qos, prefetch_count=self.prefetch)
                channel.raw.add_on_cancel_callback(functools.partial(self._on_broker_cancel, acks))
                on_message = functools.partial(self._on_message, acks)
                await channel.call(channel.raw.basic_consume, self.queue, on_message, consumer_tag=tag)
            except BaseException:
                await channel.close()
                raise
            self._channel, self._acks, self._tag = channel, acks, tag
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
            acks, self._acks = self._acks, None
        if channel is not None and channel.is_open:
            with contextlib.suppress(BrokerError):
                await channel.call(channel.raw.basic_cancel, self._tag)
        await self._drain()
        if acks is not None:
            acks.send()  # ahead of the close, which would requeue what they settle
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
        acks: ChannelAcks,
        _raw: Channel,
        method: spec.Basic.Deliver,
        properties: spec.BasicProperties,
        body: bytes,
    ) -> None:
        acks.delivered(method.delivery_tag)
        delivery = RabbitDelivery(
            acks,
            method.delivery_tag,
            from_properties(properties, body),
            queue=self.queue,
            exchange=method.exchange,
            routing_key=method.routing_key,
            redelivered=method.redelivered,
        )
        task = acks.channel.loop.create_task(self._handle(delivery))
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

    def _on_broker_cancel(self, acks: ChannelAcks, _frame: object) -> None:
        # The queue was deleted (or the node went away): drop this channel; the next reconnect
        # re-declares the topology and subscribes again.
        log.warning("RabbitMQ cancelled the consumer on %r", self.queue)
        acks.send()
        acks.channel.close_soon()

    def _on_channel_closed(self, channel: AsyncChannel, reason: BrokerError) -> None:
        if self._channel is channel:
            self._channel = self._acks = None
        if self.active and isinstance(reason.__cause__, pe.ChannelClosedByBroker):
            log.warning("RabbitMQ closed the consumer channel on %r (%s); re-subscribing", self.queue, reason)
            self._on_channel_lost(self)
