"""The SOAP face's exceptions; each says which disposition (hub.dispositions) it becomes.

SoapFaceError                   root (a HubError)
├── SoapProtocolError           not a SOAP 1.1 envelope, or X-Road headers missing/malformed (Client.BadRequest)
├── UnknownService              no such service on this hub (Client.UnknownService)
├── NoSoapFace                  the service has neither a WSDL nor request/response models (Client.UnknownService)
├── InvalidBody                 the body does not match the operation's request model; names the field
│                               (also a hub InvalidInput: Client.InvalidRequest)
└── BadReply                    the service's answer cannot be turned into the SOAP response its WSDL
                                promises (also a hub ConnectorError: Server.ServerProxy.BackendError)

Gateway-side outcomes carry a named disposition; the two that are also hub errors are looked up in
the one table like every other failure.
"""

from typing import Any, ClassVar

from hub.dispositions import MALFORMED, UNKNOWN_SERVICE, Disposition, disposition_for
from hub.errors import ConnectorError, HubError, InvalidInput

CONNECTOR = "soap-face"


class SoapFaceError(HubError):
    """Root of every error the SOAP face raises on purpose."""

    disposition: ClassVar[Disposition | None] = None

    def __init__(self, message: str, *, field: str | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.field = field


class SoapProtocolError(SoapFaceError):
    """The request is not a SOAP 1.1 envelope this face accepts; `field` names the culprit."""

    disposition = MALFORMED


class UnknownService(SoapFaceError):
    """No service with this id is registered on this hub."""

    disposition = UNKNOWN_SERVICE


class NoSoapFace(SoapFaceError):
    """The service exists but cannot be offered over SOAP; the message says why."""

    disposition = UNKNOWN_SERVICE

    def __init__(self, message: str, *, service: str) -> None:
        super().__init__(message)
        self.service = service


class InvalidBody(SoapFaceError, InvalidInput):
    """The SOAP body does not match the operation's request model; `field` is a dotted path."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message, field=field, connector=CONNECTOR)


class BadReply(SoapFaceError, ConnectorError):
    """The service answered something its response model refuses."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message, field=field, connector=CONNECTOR)


def disposition_of(exc: BaseException) -> Disposition:
    """The disposition of a failure met by the SOAP face (the table decides for hub errors)."""
    named = getattr(exc, "disposition", None)
    return named if isinstance(named, Disposition) else disposition_for(exc)


__all__ = [
    "BadReply",
    "InvalidBody",
    "NoSoapFace",
    "SoapFaceError",
    "SoapProtocolError",
    "UnknownService",
    "disposition_of",
]
