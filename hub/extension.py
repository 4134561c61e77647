"""Hub extensions: features of the hub core that bring routes, topology and background work.

An extension (document exchange, the SOAP face, ...) is built from the Hub, contributes FastAPI
routers to the gateway and exchanges/queues to the topology, and is started and stopped with the
hub. Extensions are part of `hub/`; connectors never are.
"""

import abc
from typing import TYPE_CHECKING

from fastapi import APIRouter

from hub.broker.base import Topology

if TYPE_CHECKING:
    from hub.runtime import Hub


class Extension(abc.ABC):  # noqa: B024 - every hook is optional
    """A feature that plugs into a Hub's gateway, topology and lifecycle."""

    name: str = "extension"

    def __init__(self, hub: "Hub") -> None:
        self.hub = hub

    def topology(self) -> Topology:
        """Exchanges and queues this extension needs (declared with the hub's)."""
        return Topology()

    def routers(self) -> list[APIRouter]:
        """Routes this extension adds to the gateway."""
        return []

    async def start(self, *, workers: bool) -> None:  # noqa: B027 - optional hook
        """Start background work; `workers` says whether this process runs consumers."""

    async def stop(self) -> None:  # noqa: B027 - optional hook
        """Stop background work gracefully."""


__all__ = ["Extension"]
