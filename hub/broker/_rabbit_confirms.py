"""Publisher confirms: one future per publish, settled by the broker's ack, nack or return.

A confirm-mode channel numbers its publishes 1, 2, 3, ... and the broker acks or nacks them by that
delivery tag, possibly many at once (`multiple=True`: every tag up to this one). A mandatory publish
that matches no queue comes back as a `basic.return` *before* its ack; a return carries no delivery
tag, so it is matched to the earliest publish in flight with the same exchange, routing key, ids and
body (the broker handles one channel's publishes in order, so the earliest match is the one).
"""

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass

from pika import frame, spec

from hub.errors import BrokerConnectionError, BrokerError, PublishNackedError, UnroutableError

log = logging.getLogger(__name__)


@dataclass(slots=True, eq=False)
class _InFlight:
    future: "asyncio.Future[None]"
    exchange: str
    routing_key: str
    mandatory: bool
    message_id: str | None
    correlation_id: str | None
    body: bytes


class ConfirmTracker:
    """The publishes of one confirm-mode channel awaiting the broker's verdict, by delivery tag."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._in_flight: OrderedDict[int, _InFlight] = OrderedDict()
        self._last_tag = 0

    def __len__(self) -> int:
        return len(self._in_flight)

    def expect(
        self, exchange: str, routing_key: str, properties: spec.BasicProperties, body: bytes, mandatory: bool
    ) -> "asyncio.Future[None]":
        """Register the publish just sent on the channel; its future settles with the confirm."""
        self._last_tag += 1
        future: asyncio.Future[None] = self._loop.create_future()
        self._in_flight[self._last_tag] = _InFlight(
            future, exchange, routing_key, mandatory, properties.message_id, properties.correlation_id, body
        )
        return future

    def on_confirm(self, method_frame: frame.Method) -> None:
        """pika's ack/nack callback for the channel."""
        method = method_frame.method
        nacked = isinstance(method, spec.Basic.Nack)
        for tag, publish in self._pop_confirmed(method.delivery_tag, method.multiple):
            if publish.future.done():
                continue
            if nacked:
                publish.future.set_exception(
                    PublishNackedError(
                        f"RabbitMQ nacked publish {tag} to {publish.exchange!r}/{publish.routing_key!r}"
                    )
                )
            else:
                publish.future.set_result(None)

    def on_return(
        self, _channel: object, method: spec.Basic.Return, properties: spec.BasicProperties, body: bytes
    ) -> None:
        """pika's basic.return callback: the matching publish fails with UnroutableError."""
        for tag, publish in self._in_flight.items():
            if (
                publish.mandatory
                and publish.exchange == method.exchange
                and publish.routing_key == method.routing_key
                and publish.message_id == properties.message_id
                and publish.correlation_id == properties.correlation_id
                and publish.body == body
            ):
                del self._in_flight[tag]
                if not publish.future.done():
                    publish.future.set_exception(
                        UnroutableError(
                            f"no queue is bound to exchange {method.exchange!r} for routing key "
                            f"{method.routing_key!r} ({method.reply_code} {method.reply_text})",
                            exchange=method.exchange,
                            routing_key=method.routing_key,
                        )
                    )
                return
        log.warning(
            "returned message to %r/%r matched no publish in flight", method.exchange, method.routing_key
        )

    def fail_all(self, reason: BrokerError) -> None:
        """The channel is gone: every publish still in flight fails with BrokerConnectionError."""
        in_flight, self._in_flight = self._in_flight, OrderedDict()
        for publish in in_flight.values():
            if not publish.future.done():
                error = BrokerConnectionError(
                    f"the channel closed before RabbitMQ confirmed the publish to "
                    f"{publish.exchange!r}/{publish.routing_key!r}; it may be retried"
                )
                error.__cause__ = reason
                publish.future.set_exception(error)

    async def wait_settled(self, timeout: float) -> None:
        """Wait (at most `timeout` seconds) for the publishes in flight now to be confirmed."""
        futures = [publish.future for publish in self._in_flight.values()]
        if futures:
            await asyncio.wait(futures, timeout=timeout)

    def _pop_confirmed(self, delivery_tag: int, multiple: bool) -> list[tuple[int, _InFlight]]:
        if not multiple:
            publish = self._in_flight.pop(delivery_tag, None)
            return [] if publish is None else [(delivery_tag, publish)]
        confirmed = []
        while self._in_flight:
            tag = next(iter(self._in_flight))
            if delivery_tag and tag > delivery_tag:
                break
            confirmed.append((tag, self._in_flight.pop(tag)))
        return confirmed
