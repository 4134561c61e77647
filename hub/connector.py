"""The connector seam: what a national-system (or generic) connector looks like to the hub.

A connector type is a class registered under the entry-point group ``lgsp_hub.connectors``. It
declares its ``name``, a pydantic ``Settings`` model, and the ``operations`` it offers, and is built
by ``create(settings, context)``. The worker calls ``call(request) -> reply`` and finally
``close()``. A connector raises only the hub's ``ConnectorError`` types (hub.errors); foreign
exceptions (httpx, zeep, lxml) are translated at its boundary.
"""

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from hub.identifiers import ServiceId

ANY_OPERATION = "*"


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation a connector offers; models describe JSON bodies (used for the SOAP face)."""

    name: str
    description: str = ""
    request_model: type[BaseModel] | None = None
    response_model: type[BaseModel] | None = None
    methods: tuple[str, ...] = ("POST",)


@dataclass(frozen=True, slots=True)
class ConnectorRequest:
    """What the worker hands a connector: one HTTP-shaped request for one operation.

    ``attempt`` counts the worker's retries of the same message (1 on the first try), for
    national systems that refuse a repeated request id.
    """

    operation: str
    service: ServiceId
    client: str
    message_id: str
    method: str = "POST"
    path: str = ""
    query: tuple[tuple[str, str], ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    content_type: str = "application/json"
    user_id: str | None = None
    attempt: int = 1


@dataclass(frozen=True, slots=True)
class ConnectorReply:
    """What a connector answers: an HTTP-shaped response the gateway passes back."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


class ConnectorSettings(BaseModel):
    """Base for connector settings: frozen, unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


@dataclass(frozen=True, slots=True)
class ConnectorContext:
    """Shared collaborators handed to every connector the hub builds (injected, never global).

    ``instance`` is the configured connector instance name (queue name, metrics label);
    ``cache`` and ``rate_limiter`` are shared stores when the hub has them; ``extras`` carries
    anything else a deployment wires in.
    """

    instance: str
    cache: Any = None
    rate_limiter: Any = None
    extras: Mapping[str, Any] = field(default_factory=dict)


class Connector(abc.ABC):
    """A connector type. Subclasses set ``name``, ``Settings`` and ``operations``."""

    name: ClassVar[str]
    Settings: ClassVar[type[ConnectorSettings]] = ConnectorSettings
    operations: ClassVar[Mapping[str, Operation]] = {}

    @classmethod
    @abc.abstractmethod
    def create(cls, settings: Any, context: ConnectorContext) -> "Connector":
        """Build a connector from validated settings and the hub's shared collaborators."""

    @abc.abstractmethod
    async def call(self, request: ConnectorRequest) -> ConnectorReply:
        """Perform one operation.

        Raises:
            ConnectorError: any failure, as one of its subclasses.
        """

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release pools and sockets."""


__all__ = [
    "ANY_OPERATION",
    "Connector",
    "ConnectorContext",
    "ConnectorReply",
    "ConnectorRequest",
    "ConnectorSettings",
    "Operation",
]
