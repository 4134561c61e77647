"""The hub services of the business registry, as a configuration fragment pointed at a sandbox.

The demo, the tests and the benchmark share it, so the service ids, the operation binding, the
credentials the sandbox accepts, the cache TTL and the province's quota are written once.

The provider is ``VN/GOV/000.00.00.G22/business``: ``000.00.00.G22`` stands for the Ministry of
Planning and Investment, which keeps the national business registration database, in this project
(the SOAP face's docs and tests use the same code). A province whose directory of organ codes says
otherwise changes ``PROVIDER`` here.
"""

from collections.abc import Mapping
from typing import Any

from connectors.business_registry.connector import LOOKUP, SEARCH
from connectors.business_registry.sandbox import SANDBOX_CREDENTIALS

PROVIDER = "VN/GOV/000.00.00.G22/business"
LOOKUP_SERVICE = f"{PROVIDER}/{LOOKUP}/v1"
SEARCH_SERVICE = f"{PROVIDER}/{SEARCH}/v1"
SERVICES = (LOOKUP_SERVICE, SEARCH_SERVICE)
CONNECTOR_INSTANCE = "business-registry"
CACHE_TTL = 3600.0  # a registration changes rarely; an hour-old answer is good enough for a counter
RATE_LIMIT_PER_SECOND = 50.0  # the province's quota towards the national registry


def business_fragment(
    base_url: str,
    *,
    credentials: Mapping[str, str] | None = None,
    instance: str = CONNECTOR_INSTANCE,
    cache_ttl: float = CACHE_TTL,
    rate_limit_per_second: float | None = RATE_LIMIT_PER_SECOND,
    retry: Mapping[str, Any] | None = None,
    concurrency: int | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """The config fragment binding both business services to a ``business_registry`` connector.

    ``base_url`` is the sandbox's (or the LGSP's) base URL; ``credentials`` are the five fields of
    the auth header (the sandbox's defaults when omitted). ``settings`` override further connector
    settings (``cache_max_stale=...``, ``rate_limit_timeout=...``). The fragment has the keys
    ``connectors``, ``services`` and ``allowed`` (the services to grant).
    """
    creds = dict(credentials or SANDBOX_CREDENTIALS)
    connector: dict[str, Any] = {
        "type": "business_registry",
        "settings": {
            "base_url": base_url,
            "access_key": creds["AccessKey"],
            "secret_key": creds["SecretKey"],
            "app_name": creds["AppName"],
            "partner_code": creds["PartnerCode"],
            "partner_code_cus": creds.get("PartnerCodeCus", ""),
            "cache_ttl": cache_ttl,
            "rate_limit_per_second": rate_limit_per_second,
            **settings,
        },
    }
    if retry is not None:
        connector["retry"] = dict(retry)
    if concurrency is not None:
        connector["concurrency"] = concurrency
    return {
        "connectors": {instance: connector},
        "services": {
            LOOKUP_SERVICE: {
                "connector": instance,
                "operation": LOOKUP,
                "description": "Look an enterprise (10-digit code) or a branch (10-3 code) up in the national business registry",
            },
            SEARCH_SERVICE: {
                "connector": instance,
                "operation": SEARCH,
                "description": "Search the national business registry by enterprise name, one page at a time",
            },
        },
        "allowed": list(SERVICES),
    }


__all__ = [
    "CACHE_TTL",
    "CONNECTOR_INSTANCE",
    "LOOKUP_SERVICE",
    "PROVIDER",
    "RATE_LIMIT_PER_SECOND",
    "SEARCH_SERVICE",
    "SERVICES",
    "business_fragment",
]
