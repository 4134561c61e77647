"""Forward a request to a configured base URL: method, path, query, body and end-to-end headers.

Hop-by-hop headers are dropped; the X-Road identity of the call is added (``X-Road-Client``,
``X-Road-Service``, ``X-Road-Id``) so the backend can log it, as an X-Road provider would.
Backend 4xx answers are passed back unchanged; 5xx, refused connections and timeouts become the
hub's retryable errors (the worker retries them a bounded number of times).
"""

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import AnyHttpUrl

from hub.connector import (
    ANY_OPERATION,
    Connector,
    ConnectorContext,
    ConnectorReply,
    ConnectorRequest,
    Operation,
)
from hub.errors import BackendUnavailable
from hub.http import ClientPool, HttpSettings, backend_errors, end_to_end

# Set by the hub on the way back (content-type travels as the reply's own property).
_NOT_FORWARDED = frozenset({"content-type", "date", "server"})


class RestSettings(HttpSettings):
    base_url: AnyHttpUrl
    headers: Mapping[str, str] = {}


class RestConnector(Connector):
    """Pass-through to an HTTP backend."""

    name: ClassVar[str] = "rest"
    Settings = RestSettings
    operations: ClassVar[Mapping[str, Operation]] = {
        ANY_OPERATION: Operation(ANY_OPERATION, "any method and path under the base URL", methods=("*",))
    }

    def __init__(
        self, settings: RestSettings, context: ConnectorContext, *, transport_factory: Any = None
    ) -> None:
        self._settings = settings
        self._instance = context.instance
        self._base = str(settings.base_url).rstrip("/")
        self._pool = ClientPool(settings, headers=settings.headers, transport_factory=transport_factory)

    @classmethod
    def create(cls, settings: Any, context: ConnectorContext) -> "RestConnector":
        return cls(settings, context)

    async def call(self, request: ConnectorRequest) -> ConnectorReply:
        headers = end_to_end(request.headers)
        headers.update(
            {
                "x-road-client": request.client,
                "x-road-service": str(request.service),
                "x-road-id": request.message_id,
            }
        )
        if request.body:
            headers["content-type"] = request.content_type
        url = self._base + "/" + request.path.lstrip("/") if request.path else self._base
        with backend_errors(self._instance, self._base):
            answer = await self._pool.exchange(
                request.method, url, params=request.query, headers=headers, content=request.body
            )
        content_type = answer.headers.get("content-type", "application/octet-stream")
        if answer.status_code >= 500:
            raise BackendUnavailable(
                f"{self._instance}: backend answered HTTP {answer.status_code}",
                connector=self._instance,
                status_code=502,
                detail={"backend_status": answer.status_code},
                body=answer.body,
                content_type=content_type,
            )
        return ConnectorReply(
            status=answer.status_code,
            body=answer.body,
            content_type=content_type,
            headers=end_to_end(answer.headers, drop=_NOT_FORWARDED),
        )

    async def close(self) -> None:
        await self._pool.aclose()
