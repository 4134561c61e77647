"""Pieces every client-facing protocol of the gateway shares (REST r1, SOAP face, document exchange)."""

import base64
import hashlib
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from starlette.requests import Request

from hub.codec import envelope_to_message, message_to_reply
from hub.envelope import Envelope, Reply, new_id, utcnow
from hub.store import ExchangeRecord

if TYPE_CHECKING:
    from hub.runtime import Hub

# Headers that authenticate the client to the hub never travel further.
HUB_HEADERS = frozenset(
    {
        "x-api-key",
        "x-road-client",
        "x-road-id",
        "x-road-userid",
        "x-road-signature",
        "x-systemid",
        "x-secretkey",
        "cookie",
    }
)


class TooLarge(Exception):
    """The request body is over the configured limit."""


def request_hash(method: str, path: str, client: str, message_id: str, body: bytes) -> str:
    """base64(SHA-512(SHA-512(request line + X-Road headers) + SHA-512(body))), as X-Road's request hash."""
    head = f"{method} {path}\nx-road-client: {client}\nx-road-id: {message_id}\n".encode()
    digest = hashlib.sha512(hashlib.sha512(head).digest() + hashlib.sha512(body).digest()).digest()
    return base64.b64encode(digest).decode()


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"the body is {declared} bytes; the limit is {limit}")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass(slots=True)
class Attempt:
    """What is known of one request so far; every request, refused or answered, ends as one record."""

    method: str
    message_id: str
    request_id: str = field(default_factory=new_id)
    received_at: datetime = field(default_factory=utcnow)
    started: float = field(default_factory=time.perf_counter)
    client: str = "-"
    service: str = "-"
    operation: str = "-"
    request_bytes: int = 0
    response_bytes: int = 0
    error_type: str | None = None


def record(hub: "Hub", attempt: Attempt, status: int) -> None:
    """Count the request in the metrics and queue its exchange record."""
    elapsed = time.perf_counter() - attempt.started
    hub.metrics.count_request(attempt.service, status, elapsed)
    hub.exchange_log.add(
        ExchangeRecord(
            message_id=attempt.message_id[:128],
            request_id=attempt.request_id,
            client=attempt.client,
            service=attempt.service,
            operation=attempt.operation,
            method=attempt.method,
            status=status,
            error_type=attempt.error_type,
            request_bytes=attempt.request_bytes,
            response_bytes=attempt.response_bytes,
            received_at=attempt.received_at,
            completed_at=utcnow(),
            duration_ms=elapsed * 1000.0,
        )
    )


async def dispatch(hub: "Hub", envelope: Envelope, *, timeout: float) -> Reply:
    """Send a request envelope to its service's connector queue and wait for the worker's reply.

    Raises:
        BrokerError: unroutable, nacked, connection lost, or no reply within `timeout`.
        EnvelopeError: the reply cannot be decoded.
    """
    message = await hub.broker.request(
        hub.settings.broker.request_exchange,
        envelope.service.routing_key,
        envelope_to_message(envelope),
        timeout=timeout,
    )
    return message_to_reply(message)


__all__ = ["HUB_HEADERS", "Attempt", "TooLarge", "dispatch", "read_body", "record", "request_hash"]
