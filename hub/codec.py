"""The one codec between the hub's Envelope / Reply and AMQP messages (properties + headers)."""

import functools
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from hub.broker.base import Message
from hub.envelope import Envelope, Reply
from hub.errors import EnvelopeError, IdentifierError
from hub.identifiers import ServiceId

REQUEST_TYPE = "lgsp.request"
REPLY_TYPE = "lgsp.reply"
_PREFIX = "lgsp-"


def envelope_to_message(envelope: Envelope) -> Message:
    """Encode a request envelope as a persistent AMQP message.

    Persistent as the design asks, and harmless after a broker restart: a request that survives
    one carries its caller's deadline, and a worker drops it unhandled once that has passed.
    """
    headers: dict[str, Any] = {
        "lgsp-client": envelope.client,
        "lgsp-service": str(envelope.service),
        "lgsp-operation": envelope.operation,
        "lgsp-method": envelope.method,
        "lgsp-path": envelope.path,
        "lgsp-created-at": envelope.created_at.isoformat(),
        "lgsp-trace": list(envelope.trace),
    }
    if envelope.headers:  # absent means none, to every decoder (pika's table codec is slow)
        headers["lgsp-http-headers"] = dict(envelope.headers)
    if envelope.query:
        headers["lgsp-query"] = urlencode(envelope.query)
    if envelope.user_id is not None:
        headers["lgsp-user-id"] = envelope.user_id
    if envelope.deadline is not None:
        headers["lgsp-deadline"] = envelope.deadline.isoformat()
    return Message(
        body=envelope.body,
        content_type=envelope.content_type,
        message_id=envelope.message_id,
        correlation_id=envelope.correlation_id,
        headers=headers,
        timestamp=int(envelope.created_at.timestamp()),
        type=REQUEST_TYPE,
    )


@functools.lru_cache(maxsize=1024)
def _service(value: str) -> ServiceId:
    # Every request of a service names it again; identifiers are immutable values.
    return ServiceId.parse(value)


def _required(headers: Mapping[str, Any], name: str) -> str:
    value = headers.get(name)
    if not isinstance(value, str | bytes) or not value:
        raise EnvelopeError(f"AMQP message has no {name!r} header")
    return value.decode() if isinstance(value, bytes) else value


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _time(headers: Mapping[str, Any], name: str) -> datetime | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return datetime.fromisoformat(_text(value))
    except ValueError as exc:
        raise EnvelopeError(f"AMQP header {name!r} is not an ISO 8601 time: {value!r}") from exc


def message_to_envelope(message: Message) -> Envelope:
    """Decode an AMQP message into a request envelope.

    Raises:
        EnvelopeError: a required property or header is missing or malformed.
    """
    headers = message.headers or {}
    if not message.message_id:
        raise EnvelopeError("AMQP message has no message_id property")
    try:
        service = _service(_required(headers, "lgsp-service"))
    except IdentifierError as exc:
        raise EnvelopeError(f"AMQP header 'lgsp-service': {exc}") from exc
    http_headers = headers.get("lgsp-http-headers") or {}
    if not isinstance(http_headers, Mapping):
        raise EnvelopeError("AMQP header 'lgsp-http-headers' is not a table")
    created_at = _time(headers, "lgsp-created-at")
    if created_at is None:
        raise EnvelopeError("AMQP message has no 'lgsp-created-at' header")
    query = headers.get("lgsp-query")
    user_id = headers.get("lgsp-user-id")
    return Envelope(
        message_id=message.message_id,
        correlation_id=message.correlation_id or message.message_id,
        client=_required(headers, "lgsp-client"),
        service=service,
        operation=_required(headers, "lgsp-operation"),
        method=_text(headers.get("lgsp-method") or "POST"),
        path=_text(headers.get("lgsp-path") or ""),
        query=tuple(parse_qsl(_text(query), keep_blank_values=True)) if query else (),
        headers={_text(k): _text(v) for k, v in http_headers.items()},
        user_id=_text(user_id) if user_id is not None else None,
        body=message.body,
        content_type=message.content_type or "application/octet-stream",
        created_at=created_at,
        deadline=_time(headers, "lgsp-deadline"),
        trace=tuple(_text(t) for t in headers.get("lgsp-trace") or ()),
    )


def reply_to_message(reply: Reply) -> Message:
    """Encode a reply as an AMQP message (sent to the requester's reply address)."""
    headers: dict[str, Any] = {"lgsp-status": reply.status, "lgsp-trace": list(reply.trace)}
    if reply.headers:
        headers["lgsp-http-headers"] = dict(reply.headers)
    if reply.error_type:
        headers["lgsp-error-type"] = reply.error_type
    return Message(
        body=reply.body,
        content_type=reply.content_type,
        message_id=reply.message_id,
        headers=headers,
        type=REPLY_TYPE,
        persistent=False,
    )


def message_to_reply(message: Message) -> Reply:
    """Decode a reply message.

    Raises:
        EnvelopeError: the status header is missing or not an integer.
    """
    headers = message.headers or {}
    try:
        status = int(headers["lgsp-status"])
    except (KeyError, TypeError, ValueError) as exc:
        raise EnvelopeError("reply message has no integer 'lgsp-status' header") from exc
    error_type = headers.get("lgsp-error-type")
    http_headers = headers.get("lgsp-http-headers") or {}
    return Reply(
        message_id=message.message_id or "",
        status=status,
        body=message.body,
        content_type=message.content_type or "application/octet-stream",
        headers={_text(k): _text(v) for k, v in http_headers.items()},
        error_type=_text(error_type) if error_type else None,
        trace=tuple(_text(t) for t in headers.get("lgsp-trace") or ()),
    )


__all__ = ["envelope_to_message", "message_to_envelope", "message_to_reply", "reply_to_message"]
