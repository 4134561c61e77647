"""The one place where failures of the platform and of foreign libraries become the hub's connector errors."""

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx
import pydantic

from hub.errors import (
    BackendAuthFailure,
    BackendRejected,
    BackendTimeout,
    BackendUnavailable,
    ConnectorError,
    NotFound,
)
from hub.ratelimit import RateLimitStoreError, RateLimitTimeout
from mappings import MappingError

CONNECTOR = "business_registry"

# Foreign exception -> (our error, HTTP status the hub answers, what happened). Most specific first.
FOREIGN: tuple[tuple[type[BaseException], type[ConnectorError], int, str], ...] = (
    (httpx.PoolTimeout, BackendTimeout, 504, "no free connection to the registry in time"),
    (httpx.TimeoutException, BackendTimeout, 504, "the registry did not answer in time"),
    (TimeoutError, BackendTimeout, 504, "the registry did not answer in time"),
    (httpx.TransportError, BackendUnavailable, 502, "the registry cannot be reached"),
    (httpx.HTTPError, BackendUnavailable, 502, "the exchange with the registry failed"),
    (RateLimitTimeout, BackendUnavailable, 503, "the hub's rate limit towards the registry is exhausted"),
    (RateLimitStoreError, BackendUnavailable, 503, "the hub's rate-limit storage failed"),
    (json.JSONDecodeError, BackendUnavailable, 502, "the registry answered something that is not JSON"),
    (MappingError, BackendRejected, 502, "the registry's answer does not map to the canonical model"),
    (
        pydantic.ValidationError,
        BackendRejected,
        502,
        "the registry's answer does not fit the canonical model",
    ),
)

# Platform status (the envelope's StatusCode, else the HTTP status) -> (our error, HTTP status).
PLATFORM: Mapping[int, tuple[type[ConnectorError], int]] = {
    400: (BackendRejected, 422),
    401: (BackendAuthFailure, 502),
    403: (BackendAuthFailure, 502),
    404: (NotFound, 404),
}


def _detail(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, RateLimitTimeout):
        return {"reason": "rate_limited", "retry_after": round(exc.wait, 3)}
    if isinstance(exc, MappingError):
        return {"reason": "mapping", "path": exc.path, "cause": exc.cause}
    if isinstance(exc, pydantic.ValidationError):
        first = exc.errors()[0]
        return {"reason": "model", "path": ".".join(str(p) for p in first["loc"]), "cause": first["msg"]}
    return {"reason": type(exc).__name__}


@contextmanager
def translated(operation: str) -> Iterator[None]:
    """Re-raise a foreign failure inside the block as the hub's connector error (cause chained)."""
    try:
        yield
    except ConnectorError:
        raise
    except tuple(row[0] for row in FOREIGN) as exc:
        for foreign, ours, status, text in FOREIGN:
            if isinstance(exc, foreign):
                raise ours(
                    f"{operation}: {text} ({type(exc).__name__}: {exc})",
                    connector=CONNECTOR,
                    status_code=status,
                    detail=_detail(exc),
                ) from exc
        raise  # unreachable: the except clause lists exactly the table's types


def platform_error(operation: str, status: int, description: str) -> ConnectorError:
    """The connector error for a platform failure status (not 429, which the connector handles)."""
    ours, http_status = PLATFORM.get(status) or (
        (BackendUnavailable, 502) if status >= 500 else (BackendRejected, 422)
    )
    return ours(
        f"{operation}: the registry answered {status}: {description}",
        connector=CONNECTOR,
        status_code=http_status,
        detail={"platform_status": status, "description": description},
    )


__all__ = ["CONNECTOR", "FOREIGN", "PLATFORM", "platform_error", "translated"]
