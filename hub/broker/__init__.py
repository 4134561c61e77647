"""Broker seam and its two implementations (RabbitMQ via pika, embedded in-process)."""

from hub.broker.base import (
    DEAD_LETTER_EXCHANGE,
    Broker,
    Consumer,
    Delivery,
    ExchangeSpec,
    Handler,
    Message,
    QueueSpec,
    Topology,
)

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
    "create_broker",
]


def create_broker(url: str | None) -> Broker:
    """Build the broker a URL names: ``amqp://...`` is RabbitMQ, ``embedded://`` or None is in-process."""
    if url is None or url.startswith("embedded:"):
        from hub.broker.embedded import EmbeddedBroker

        return EmbeddedBroker()
    if url.startswith(("amqp://", "amqps://")):
        from hub.broker.rabbitmq import RabbitBroker

        return RabbitBroker(url)
    from hub.errors import ConfigError

    raise ConfigError(
        f"broker.url {url!r}: expected amqp://..., amqps://... or embedded://", key="broker.url"
    )
