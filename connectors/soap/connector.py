"""Forward a SOAP 1.1/1.2 envelope to a configured endpoint and pass the answer back.

SOAP faults (HTTP 500 with an XML body) are the provider's answer and pass back unchanged, as in
X-Road; other 5xx answers, refused connections and timeouts become the hub's retryable errors.
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
from hub.errors import BackendUnavailable, InvalidInput
from hub.http import ClientPool, HttpSettings, backend_errors

_XML_TYPES = ("text/xml", "application/soap+xml", "application/xml")


class SoapSettings(HttpSettings):
    endpoint: AnyHttpUrl
    headers: Mapping[str, str] = {}


class SoapConnector(Connector):
    """Pass-through to a SOAP endpoint."""

    name: ClassVar[str] = "soap"
    Settings = SoapSettings
    operations: ClassVar[Mapping[str, Operation]] = {
        ANY_OPERATION: Operation(ANY_OPERATION, "any SOAP operation of the endpoint")
    }

    def __init__(self, settings: SoapSettings, context: ConnectorContext) -> None:
        self._instance = context.instance
        self._endpoint = str(settings.endpoint)
        self._pool = ClientPool(settings, headers=settings.headers)

    @classmethod
    def create(cls, settings: Any, context: ConnectorContext) -> "SoapConnector":
        return cls(settings, context)

    async def call(self, request: ConnectorRequest) -> ConnectorReply:
        if request.content_type.split(";")[0].strip().lower() not in _XML_TYPES:
            raise InvalidInput(
                f"a SOAP service takes text/xml or application/soap+xml, not {request.content_type!r}",
                field="Content-Type",
                connector=self._instance,
            )
        headers = {
            "content-type": request.content_type,
            "soapaction": request.headers.get("soapaction", '""'),
            "x-road-client": request.client,
            "x-road-id": request.message_id,
        }
        with backend_errors(self._instance, self._endpoint):
            response, body = await self._pool.send(
                "POST", self._endpoint, headers=headers, content=request.body
            )
        content_type = response.headers.get("content-type", "text/xml")
        is_fault = response.status_code == 500 and content_type.split(";")[0].strip().lower() in _XML_TYPES
        if response.status_code >= 500 and not is_fault:
            raise BackendUnavailable(
                f"{self._instance}: endpoint answered HTTP {response.status_code}",
                connector=self._instance,
                detail={"backend_status": response.status_code},
            )
        return ConnectorReply(status=response.status_code, body=body, content_type=content_type)

    async def close(self) -> None:
        await self._pool.aclose()
