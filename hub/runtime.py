"""The Hub: one object wiring settings, broker, store, registry, workers and the gateway app.

Collaborators are injected (`Hub(settings, broker=..., store=..., registry=...)`); `Hub.create`
builds the real ones from the settings. `start()` connects, migrates and declares; workers and the
gateway are started on request so the same object serves `lgsp serve`, `lgsp worker` and the demo.
"""

import asyncio
import importlib
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from hub.broker import Broker, create_broker
from hub.cache import Cache, MemoryCache, RedisCache
from hub.connector import ConnectorContext
from hub.errors import BrokerConnectionError
from hub.extension import Extension
from hub.gateway.signatures import GatewaySignatures
from hub.identifiers import ServiceId
from hub.metrics import HubMetrics
from hub.ratelimit import RateLimiter
from hub.registry import ConnectorRegistry, bind_services
from hub.settings import ServiceSettings, Settings
from hub.store import ExchangeLog, Store
from hub.topology import request_topology
from hub.worker import Worker

if TYPE_CHECKING:
    from hub.gateway.app import GatewayApp

log = logging.getLogger(__name__)

MAINTENANCE_FLAG = "maintenance"


def extension_factories(settings: Settings) -> list[Callable[["Hub"], Extension]]:
    """The hub-core extensions this configuration enables, in start order."""
    factories: list[Callable[[Hub], Extension]] = []
    for module, attribute in _EXTENSIONS:
        factory = getattr(importlib.import_module(module), attribute)
        if factory.enabled(settings):
            factories.append(factory)
    return factories


def build_cache(url: str, *, prefix: str) -> Cache:
    """The shared cache a URL names: ``memory://`` (this process) or ``redis://...`` (every worker).

    Keys carry `prefix` (the broker namespace), so hubs sharing one Redis do not share entries.
    """
    if url.startswith("memory:"):
        return MemoryCache()
    return RedisCache.from_url(url, prefix=prefix)


# (module, class) of each hub-core extension; each class has `enabled(settings) -> bool`.
_EXTENSIONS: tuple[tuple[str, str], ...] = (
    ("hub.soap_face.extension", "SoapFace"),
    ("hub.edocs.extension", "EdocsExtension"),
)


class Hub:
    """A running hub process: gateway and/or workers over one broker and one store."""

    def __init__(
        self,
        settings: Settings,
        *,
        broker: Broker,
        store: Store,
        registry: ConnectorRegistry,
        metrics: HubMetrics | None = None,
        cache: Cache | None = None,
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        self.settings = settings
        self.broker = broker
        self.store = store
        self.registry = registry
        self.metrics = metrics or HubMetrics()
        self.exchange_log = ExchangeLog(store)
        self.services: dict[ServiceId, ServiceSettings] = settings.service_ids()
        self.service_set = frozenset(self.services)
        self.workers: list[Worker] = []
        self.signatures = GatewaySignatures.from_settings(settings)
        self.cache: Cache = cache or build_cache(
            settings.shared.cache_url, prefix=f"{settings.broker.namespace}:cache:"
        )
        self.rate_limiter = rate_limiter or RateLimiter(
            settings.shared.rate_limit_url, key_prefix=f"{settings.broker.namespace}-ratelimit"
        )
        self.extensions: list[Extension] = [factory(self) for factory in extension_factories(settings)]
        self._started = False
        self._extensions_started: list[Extension] = []

    @classmethod
    def create(cls, settings: Settings, *, registry: ConnectorRegistry | None = None) -> "Hub":
        """Build the broker and store the settings name (RabbitMQ or embedded; PostgreSQL or SQLite)."""
        return cls(
            settings,
            broker=create_broker(settings.broker.url),
            store=Store.from_url(settings.store.url, echo=settings.store.echo),
            registry=registry or ConnectorRegistry.from_entry_points(),
        )

    async def start(self, *, migrate: bool = True) -> None:
        """Connect to the broker, migrate the store, declare the request topology."""
        if self._started:
            return
        await asyncio.wait_for(self.broker.connect(), self.settings.broker.connect_timeout + 1)
        if migrate:
            await self.store.migrate()
        topology = request_topology(self.settings)
        for extension in self.extensions:
            topology = topology.merge(extension.topology())
        await self.broker.declare(topology)
        self.exchange_log.start()
        self._started = True

    async def start_extensions(self, *, workers: bool) -> None:
        """Start every extension's background work (consumers only when `workers`)."""
        for extension in self.extensions:
            await extension.start(workers=workers)
            self._extensions_started.append(extension)

    def context_for(self, instance: str) -> ConnectorContext:
        """The collaborators handed to a connector instance (overridden by deployments that add some)."""
        return ConnectorContext(instance=instance, cache=self.cache, rate_limiter=self.rate_limiter)

    async def start_workers(self, instances: Iterable[str] | None = None, *, count: int = 1) -> list[Worker]:
        """Build the connectors of `instances` (all when None) and start `count` workers serving them.

        Raises:
            RegistryError: a connector type is missing or its settings are invalid.
        """
        bindings = bind_services(
            self.settings, self.registry, instances=instances, context_for=self.context_for
        )
        started = []
        for _ in range(count):
            worker = Worker(
                self.broker,
                bindings,
                prefetch=self.settings.broker.prefetch,
                namespace=self.settings.broker.namespace,
            )
            await worker.start()
            started.append(worker)
        self.workers.extend(started)
        return started

    def gateway_app(self) -> "GatewayApp":
        from hub.gateway.app import create_app

        return create_app(self)

    async def in_maintenance(self) -> bool:
        return (await self.store.get_flag(MAINTENANCE_FLAG, max_age=1.0)) == "on"

    async def healthy(self) -> dict[str, bool]:
        return {"broker": await self.broker.healthy(), "store": await self.store.healthy()}

    async def stop(self, *, timeout: float = 30.0) -> None:
        """Stop workers gracefully (in-flight work finishes), flush logs, close broker and store."""
        for extension in reversed(self._extensions_started):
            await extension.stop()
        self._extensions_started.clear()
        for worker in self.workers:
            await worker.stop(timeout)
        self.workers.clear()
        await self.exchange_log.close()
        await self.cache.close()
        await self.rate_limiter.close()
        try:
            await self.broker.close()
        except BrokerConnectionError:
            log.warning("broker connection was already closed")
        await self.store.close()
        self._started = False


__all__ = ["MAINTENANCE_FLAG", "Hub"]
