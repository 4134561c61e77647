"""The seam's Message to and from pika's BasicProperties + body."""

from pika.spec import BasicProperties

from hub.broker.base import Message

PERSISTENT = 2
TRANSIENT = 1


def to_properties(message: Message, **override: str | None) -> BasicProperties:
    """AMQP properties for `message`; `override` replaces single fields (reply_to, correlation_id)."""
    properties = BasicProperties(
        content_type=message.content_type,
        message_id=message.message_id,
        correlation_id=message.correlation_id,
        reply_to=message.reply_to,
        headers=dict(message.headers) if message.headers else None,
        timestamp=message.timestamp,
        type=message.type,
        expiration=message.expiration,
        delivery_mode=PERSISTENT if message.persistent else TRANSIENT,
    )
    for name, value in override.items():
        setattr(properties, name, value)
    return properties


def from_properties(properties: BasicProperties, body: bytes) -> Message:
    """The Message a consumer sees for a delivered (or returned) AMQP message."""
    return Message(
        body=body,
        content_type=properties.content_type,
        message_id=properties.message_id,
        correlation_id=properties.correlation_id,
        reply_to=properties.reply_to,
        headers=properties.headers or {},
        timestamp=properties.timestamp,
        type=properties.type,
        expiration=properties.expiration,
        persistent=properties.delivery_mode == PERSISTENT,
    )
