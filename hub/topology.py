"""The hub's RabbitMQ topology (ARCHITECTURE.md §6), derived from the configuration."""

from collections.abc import Iterable, Mapping

from hub.broker.base import ExchangeSpec, QueueSpec, Topology
from hub.identifiers import ServiceId
from hub.settings import Settings


def connector_queue(instance: str, namespace: str = "lgsp") -> str:
    """The durable request queue of a connector instance's worker pool."""
    return f"{namespace}.connector.{instance}"


def request_topology(settings: Settings, instances: Iterable[str] | None = None) -> Topology:
    """Request exchange (topic, keyed by service id) and one queue per connector instance with its DLQ."""
    grouped: dict[str, list[ServiceId]] = {}
    for service, service_settings in settings.service_ids().items():
        grouped.setdefault(service_settings.connector, []).append(service)
    wanted = set(instances) if instances is not None else set(settings.connectors)
    exchange = settings.broker.request_exchange
    queues = tuple(
        QueueSpec(
            name=connector_queue(instance, settings.broker.namespace),
            bindings=tuple((exchange, s.routing_key) for s in sorted(grouped.get(instance, []))),
        )
        for instance in sorted(wanted)
    )
    return Topology(exchanges=(ExchangeSpec(exchange, "topic"),), queues=queues)


def routing_keys(services: Mapping[ServiceId, object]) -> list[str]:
    return sorted(s.routing_key for s in services)


__all__ = ["connector_queue", "request_topology", "routing_keys"]
