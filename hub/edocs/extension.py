"""The document exchange as a hub extension: routes on the gateway, queues in the topology, delivery
workers in processes that run workers."""

from typing import TYPE_CHECKING

from fastapi import APIRouter

from hub.broker.base import Topology
from hub.edocs.api import edocs_router
from hub.edocs.delivery import DeliveryPublisher, DeliveryWorkers, EdocsMetrics, EdocsTopology
from hub.edocs.directory import AgencyDirectory
from hub.edocs.facade import facade_router
from hub.edocs.repository import EdocsRepository
from hub.edocs.service import EdocsService
from hub.edocs.transport import HttpPushTransport, PushTransport
from hub.edocs.verify import MessageVerifier, build_trust
from hub.errors import ConfigError
from hub.extension import Extension
from hub.settings import Settings

if TYPE_CHECKING:
    from hub.runtime import Hub


def check_members(settings: Settings) -> None:
    """Every edocs member must be a configured member (it authenticates as one).

    Raises:
        ConfigError: one is not (named).
    """
    for client in settings.edocs.members:
        if client not in settings.members:
            raise ConfigError(
                f"edocs.members.{client}: not a configured member (add it under members: with its api_keys)",
                key=f"edocs.members.{client}",
            )


class EdocsExtension(Extension):
    """Document exchange between agencies (edXML)."""

    name = "edocs"

    def __init__(self, hub: "Hub", *, transport: PushTransport | None = None) -> None:
        super().__init__(hub)
        settings = hub.settings.edocs
        check_members(hub.settings)
        self.names = EdocsTopology(hub.settings.broker.namespace, settings.push.retry_delays_ms)
        self.repository = EdocsRepository(hub.store.engine)
        self.directory = AgencyDirectory(settings.agencies, self.repository)
        self.metrics = EdocsMetrics(hub.metrics)
        self.publisher = DeliveryPublisher(hub.broker, self.repository, self.names)
        self.service = EdocsService(
            settings,
            repository=self.repository,
            directory=self.directory,
            verifier=MessageVerifier(build_trust(settings.trust), max_bytes=settings.max_package_bytes),
            publisher=self.publisher,
            metrics=self.metrics,
        )
        self._transport = transport
        self.transport: PushTransport | None = None
        self.workers: DeliveryWorkers | None = None

    @staticmethod
    def enabled(settings: Settings) -> bool:
        return settings.edocs.enabled

    def topology(self) -> Topology:
        return self.names.topology()

    def routers(self) -> list[APIRouter]:
        return [edocs_router(self.hub, self.service), facade_router(self.hub, self.service)]

    async def start(self, *, workers: bool) -> None:
        if workers and self.workers is None:
            self.transport = self._transport or HttpPushTransport(
                timeout=self.hub.settings.edocs.push.timeout
            )
            self.workers = DeliveryWorkers(
                self.hub.broker,
                self.repository,
                self.directory,
                self.publisher,
                self.transport,
                self.service.delivery_body,
                self.hub.settings.edocs,
                self.names,
                self.metrics,
            )
            await self.workers.start()
            if self.hub.settings.broker.url.startswith("embedded:"):
                # The embedded broker keeps messages in memory only: what the store holds as unsettled
                # was lost with the previous process.
                await self.publisher.recover()

    async def stop(self) -> None:
        await self.publisher.flush()
        if self.workers is not None:
            await self.workers.stop()
            self.workers = None
        if self.transport is not None:
            await self.transport.close()
            self.transport = None


__all__ = ["EdocsExtension", "check_members"]
