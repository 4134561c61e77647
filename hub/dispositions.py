"""The one failure-disposition table (ARCHITECTURE.md §7): what each failure becomes.

Every component asks `disposition_for(exc)`: the X-Road style error type, the HTTP status the
client sees, whether a synchronous call retries it (bounded), and whether it is the client's
fault. Nothing else in the hub decides these.
"""

import json
from dataclasses import dataclass
from typing import Any

from hub import errors


@dataclass(frozen=True, slots=True)
class Disposition:
    error_type: str
    status: int
    retry: bool = False
    client_fault: bool = False


# Gateway-side outcomes, named once.
MALFORMED = Disposition("Client.BadRequest", 400, client_fault=True)
UNAUTHENTICATED = Disposition("Client.Unauthenticated", 401, client_fault=True)
ACCESS_DENIED = Disposition("Client.AccessDenied", 403, client_fault=True)
UNKNOWN_SERVICE = Disposition("Client.UnknownService", 404, client_fault=True)
TOO_LARGE = Disposition("Client.RequestTooLarge", 413, client_fault=True)
REPLAYED = Disposition("Client.Replayed", 409, client_fault=True)
MAINTENANCE = Disposition("Server.ClientProxy.Maintenance", 503)
BROKER_DOWN = Disposition("Server.ClientProxy.BrokerUnavailable", 503)
INTERNAL = Disposition("Server.ServerProxy.InternalError", 500)

_TABLE: tuple[tuple[type[BaseException], Disposition], ...] = (
    (errors.Replayed, REPLAYED),
    (errors.InvalidInput, Disposition("Client.InvalidRequest", 400, client_fault=True)),
    (errors.NotFound, Disposition("Server.ServerProxy.NotFound", 404)),
    (errors.BackendRejected, Disposition("Server.ServerProxy.BackendRejected", 422)),
    (errors.BackendAuthFailure, Disposition("Server.ServerProxy.BackendAuthFailure", 502)),
    (errors.BackendTimeout, Disposition("Server.ServerProxy.BackendTimeout", 504, retry=True)),
    (errors.BackendUnavailable, Disposition("Server.ServerProxy.BackendUnavailable", 502, retry=True)),
    (errors.ConnectorError, Disposition("Server.ServerProxy.BackendError", 502)),
    (errors.ReplyTimeout, Disposition("Server.ClientProxy.Timeout", 504)),
    (errors.UnroutableError, Disposition("Server.ClientProxy.NoWorkerQueue", 503)),
    (errors.BrokerError, BROKER_DOWN),
    (errors.EnvelopeError, Disposition("Client.BadRequest", 400, client_fault=True)),
)


def disposition_for(exc: BaseException) -> Disposition:
    """The disposition of a failure; unexpected exceptions are internal errors."""
    for kind, disposition in _TABLE:
        if isinstance(exc, kind):
            if isinstance(exc, errors.ConnectorError) and kind in (errors.BackendRejected, errors.NotFound):
                return Disposition(disposition.error_type, exc.status_code, disposition.retry)
            return disposition
    return INTERNAL


def error_body(error_type: str, message: str, detail: Any = None) -> bytes:
    """The X-Road REST error body: ``{"type", "message", "detail"}``."""
    return json.dumps({"type": error_type, "message": message, "detail": detail}, ensure_ascii=False).encode()


__all__ = [
    "ACCESS_DENIED",
    "BROKER_DOWN",
    "INTERNAL",
    "MAINTENANCE",
    "MALFORMED",
    "REPLAYED",
    "TOO_LARGE",
    "UNAUTHENTICATED",
    "UNKNOWN_SERVICE",
    "Disposition",
    "disposition_for",
    "error_body",
]
