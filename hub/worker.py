"""The connector worker: consume → decode → connector call → reply → ack.

Every failure goes through the one disposition table (hub.dispositions): bad input gets a client
error reply and no retry; backend timeouts, 5xx and refused connections are retried a bounded
number of times within the caller's deadline and then answered with an error; backend 4xx and
business faults are passed back; anything unexpected is logged and answered as an internal error.
A message is acked only after its reply is published; a worker that dies before that leaves the
message to be redelivered. `stop()` stops consuming and lets in-flight work finish.
"""

import asyncio
import json
import logging
import os
import socket
from collections.abc import Mapping
from dataclasses import replace

from hub.broker.base import Broker, Consumer, Delivery
from hub.codec import message_to_envelope, reply_to_message
from hub.connector import ConnectorReply, ConnectorRequest
from hub.dispositions import INTERNAL, UNKNOWN_SERVICE, disposition_for, error_body
from hub.envelope import Envelope, Reply, utcnow
from hub.errors import BrokerError, ConnectorError, EnvelopeError, HubError
from hub.identifiers import ServiceId
from hub.registry import Binding
from hub.topology import connector_queue

log = logging.getLogger(__name__)

_HOP = f"worker:{socket.gethostname()}:{os.getpid()}"


class Worker:
    """Serves the request queues of a set of connector instances."""

    def __init__(
        self,
        broker: Broker,
        bindings: Mapping[ServiceId, Binding],
        *,
        prefetch: int = 32,
        namespace: str = "lgsp",
    ) -> None:
        self._broker = broker
        self._bindings = dict(bindings)
        self._prefetch = prefetch
        self._namespace = namespace
        self._consumers: list[Consumer] = []
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.handled = 0

    @property
    def instances(self) -> list[str]:
        return sorted({b.instance for b in self._bindings.values()})

    async def start(self) -> None:
        """Subscribe to the queue of every connector instance this worker serves."""
        for instance in self.instances:
            concurrency = next(
                b.config.concurrency for b in self._bindings.values() if b.instance == instance
            )
            consumer = await self._broker.consume(
                connector_queue(instance, self._namespace),
                self.handle,
                prefetch=min(self._prefetch, concurrency),
            )
            self._consumers.append(consumer)

    async def stop(self, timeout: float = 30.0) -> None:
        """Stop taking messages, finish those in flight (up to `timeout`), close connectors."""
        for consumer in self._consumers:
            try:
                await consumer.cancel()
            except BrokerError:
                log.warning("could not cancel a consumer cleanly; the broker requeues its messages")
        self._consumers.clear()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            log.warning(
                "%d messages still in flight after %.0f s; they will be redelivered", self._in_flight, timeout
            )
        for connector in {id(b.connector): b.connector for b in self._bindings.values()}.values():
            await connector.close()

    async def handle(self, delivery: Delivery) -> None:
        self._in_flight += 1
        self._idle.clear()
        try:
            await self._handle(delivery)
        finally:
            self._in_flight -= 1
            self.handled += 1
            if self._in_flight == 0:
                self._idle.set()

    async def _handle(self, delivery: Delivery) -> None:
        try:
            envelope = message_to_envelope(delivery.message)
        except EnvelopeError as exc:
            log.warning("undecodable message %s dead-lettered: %s", delivery.message.message_id, exc)
            await self._reply(delivery, _error_reply(delivery.message.message_id or "", exc))
            await delivery.nack(requeue=False)
            return
        if envelope.expired():
            log.info("message %s expired before it was handled; dropped", envelope.message_id)
            await delivery.ack()
            return
        binding = self._bindings.get(envelope.service)
        if binding is None:
            reply = Reply(
                message_id=envelope.message_id,
                status=UNKNOWN_SERVICE.status,
                body=error_body(UNKNOWN_SERVICE.error_type, f"this worker does not serve {envelope.service}"),
                error_type=UNKNOWN_SERVICE.error_type,
            )
        else:
            reply = await self._call(binding, envelope)
        await self._reply(delivery, reply)
        await delivery.ack()

    async def _reply(self, delivery: Delivery, reply: Reply) -> None:
        if delivery.message.reply_to:
            await self._broker.reply(delivery, reply_to_message(reply))

    async def _call(self, binding: Binding, envelope: Envelope) -> Reply:
        request = ConnectorRequest(
            operation=binding.operation,
            service=envelope.service,
            client=envelope.client,
            message_id=envelope.message_id,
            method=envelope.method,
            path=envelope.path,
            query=envelope.query,
            headers=envelope.headers,
            body=envelope.body,
            content_type=envelope.content_type,
            user_id=envelope.user_id,
        )
        retry = binding.config.retry
        delay = retry.backoff
        for attempt in range(1, retry.attempts + 1):
            try:
                result = await binding.connector.call(
                    request if attempt == 1 else replace(request, attempt=attempt)
                )
                return _ok_reply(envelope, result)
            except ConnectorError as exc:
                disposition = disposition_for(exc)
                if disposition.retry and attempt < retry.attempts and _time_left(envelope) > delay:
                    log.info(
                        "%s attempt %d failed (%s); retrying in %.2f s", envelope.service, attempt, exc, delay
                    )
                    await asyncio.sleep(delay)
                    delay *= 2
                    continue
                return _error_reply(envelope.message_id, exc, envelope.trace)
            except Exception as exc:
                log.exception(
                    "connector %s raised unexpectedly for %s", binding.instance, envelope.message_id
                )
                return _error_reply(envelope.message_id, exc, envelope.trace)
        raise AssertionError("unreachable")  # pragma: no cover


def _time_left(envelope: Envelope) -> float:
    if envelope.deadline is None:
        return float("inf")
    return (envelope.deadline - utcnow()).total_seconds()


def _ok_reply(envelope: Envelope, result: ConnectorReply) -> Reply:
    return Reply(
        message_id=envelope.message_id,
        status=result.status,
        body=result.body,
        content_type=result.content_type,
        headers=result.headers,
        trace=(*envelope.trace, _HOP),
    )


def _error_reply(message_id: str, exc: BaseException, trace: tuple[str, ...] = ()) -> Reply:
    disposition = disposition_for(exc)
    if disposition is INTERNAL:
        message, detail = "the hub could not complete the request", None
    else:
        message = str(exc)
        detail = _detail(exc)
    if isinstance(exc, ConnectorError) and exc.body is not None and not disposition.client_fault:
        # A national system's own error body is passed back unchanged, typed by the header.
        return Reply(
            message_id=message_id,
            status=disposition.status,
            body=exc.body,
            content_type=exc.content_type or "application/octet-stream",
            error_type=disposition.error_type,
            trace=(*trace, _HOP),
        )
    return Reply(
        message_id=message_id,
        status=disposition.status,
        body=error_body(disposition.error_type, message, detail),
        error_type=disposition.error_type,
        trace=(*trace, _HOP),
    )


def _detail(exc: BaseException) -> object:
    detail: dict[str, object] = {}
    if isinstance(exc, ConnectorError):
        if exc.connector:
            detail["connector"] = exc.connector
        if getattr(exc, "field", None):
            detail["field"] = exc.field  # type: ignore[attr-defined]
        if exc.detail is not None:
            detail["detail"] = exc.detail
    elif isinstance(exc, HubError):
        detail["error"] = type(exc).__name__
    try:
        json.dumps(detail)
    except (TypeError, ValueError):
        return {k: str(v) for k, v in detail.items()}
    return detail or None


__all__ = ["Worker"]
