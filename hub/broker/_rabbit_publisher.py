"""The publishing channel: confirm mode for pipelined publishes, plus the direct reply-to consumer.

Requests are published on the channel that consumes `amq.rabbitmq.reply-to` (RabbitMQ requires
both on one channel), so replies come back here and are matched to waiters by correlation id.
"""

import asyncio
import logging

from pika import spec
from pika.adapters.asyncio_connection import AsyncioConnection
from pika.channel import Channel

from hub.broker._rabbit_channel import AsyncChannel
from hub.broker._rabbit_codec import from_properties
from hub.broker._rabbit_confirms import ConfirmTracker
from hub.broker._rabbit_errors import pika_errors
from hub.broker.base import Message
from hub.errors import BrokerConnectionError, BrokerError

log = logging.getLogger(__name__)

REPLY_TO = "amq.rabbitmq.reply-to"


class PublisherChannel:
    """A confirm-mode channel; `publish` returns a future settled by the broker's confirm."""

    def __init__(self, channel: AsyncChannel) -> None:
        self.channel = channel
        self.confirms = ConfirmTracker()
        self._replies: dict[str, asyncio.Future[Message]] = {}
        channel.on_close(self._on_close)

    @classmethod
    async def open(cls, connection: AsyncioConnection) -> "PublisherChannel":
        """Open the channel, turn on confirms and start consuming direct replies.

        Raises:
            BrokerConnectionError: the connection dropped meanwhile.
        """
        channel = await AsyncChannel.open(connection)
        publisher = cls(channel)
        try:
            await channel.call(channel.raw.confirm_delivery, publisher.confirms.on_confirm)
            channel.raw.add_on_return_callback(publisher.confirms.on_return)
            await channel.call(channel.raw.basic_consume, REPLY_TO, publisher._on_reply, auto_ack=True)
        except BaseException:
            await channel.close()
            raise
        return publisher

    @property
    def is_open(self) -> bool:
        return self.channel.is_open

    def publish(
        self, exchange: str, routing_key: str, properties: spec.BasicProperties, body: bytes, mandatory: bool
    ) -> "asyncio.Future[None]":
        """Send the message now; the returned future settles with the broker's confirm.

        Raises:
            BrokerConnectionError: the channel is closed.
        """
        with pika_errors(f"publishing to {exchange!r}/{routing_key!r}"):
            self.channel.raw.basic_publish(exchange, routing_key, body, properties, mandatory)
        self.channel.flush()  # the caller waits for the confirm (or the reply) from here
        return self.confirms.expect(exchange, routing_key, properties, body, mandatory)

    def expects_reply(self, correlation_id: str) -> bool:
        return correlation_id in self._replies

    def expect_reply(self, correlation_id: str) -> "asyncio.Future[Message]":
        """A future for the direct reply carrying `correlation_id`."""
        future: asyncio.Future[Message] = self.channel.loop.create_future()
        self._replies[correlation_id] = future
        return future

    def forget_reply(self, correlation_id: str) -> None:
        self._replies.pop(correlation_id, None)

    async def close(self, timeout: float) -> None:
        """Let the publishes in flight settle (bounded), then close the channel."""
        await self.confirms.wait_settled(timeout)
        await self.channel.close()

    def _on_reply(
        self, _channel: Channel, _method: spec.Basic.Deliver, properties: spec.BasicProperties, body: bytes
    ) -> None:
        future = self._replies.pop(properties.correlation_id or "", None)
        if future is None or future.done():
            log.debug("dropping a late or unknown reply (correlation id %r)", properties.correlation_id)
            return
        future.set_result(from_properties(properties, body))

    def _on_close(self, reason: BrokerError) -> None:
        self.confirms.fail_all(reason)
        replies, self._replies = self._replies, {}
        for future in replies.values():
            if not future.done():
                error = BrokerConnectionError(
                    "the connection dropped before the reply arrived; it may be retried"
                )
                error.__cause__ = reason
                future.set_exception(error)
