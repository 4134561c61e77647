"""The hub services of the population DB, as a configuration fragment pointed at a sandbox.

The demo, the tests and the benchmark share it, so the service ids, the operation binding and the
credentials the sandbox accepts are written once.
"""

from collections.abc import Mapping
from typing import Any

from connectors.population_db.connector import LOOKUP_OPERATION, VERIFY_OPERATION
from connectors.population_db.sandbox import SandboxOptions

PROVIDER = "VN/GOV/000.00.00.G06/population"
LOOKUP_SERVICE = f"{PROVIDER}/{LOOKUP_OPERATION}/v1"
VERIFY_SERVICE = f"{PROVIDER}/{VERIFY_OPERATION}/v1"
SERVICES = (LOOKUP_SERVICE, VERIFY_SERVICE)
CONNECTOR_INSTANCE = "population-db"
# The hub's identity towards the national system, and the request meta fields it fills in.
HUB_SETTINGS: Mapping[str, str] = {
    "x_road_client": "VN/GOV/000.00.00.H40/lgsp",
    "public_service_code": "1.001001",
    "officer_id": "001096001005",
    "unit_code": "000.00.00.H40",
}


def population_fragment(
    endpoint: str,
    *,
    options: SandboxOptions | None = None,
    instance: str = CONNECTOR_INSTANCE,
    retry: Mapping[str, Any] | None = None,
    concurrency: int | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """The config fragment binding both population services to a ``population_db`` connector.

    ``endpoint`` is the sandbox's SOAP URL; the credentials are the first user and API key that
    ``options`` (the sandbox's, default options when omitted) accept. ``settings`` override
    connector settings (``secret="wrong"`` for an auth failure, ``timeout_seconds=...``).
    The fragment has the keys ``connectors``, ``services`` and ``allowed`` (the services to grant).
    """
    options = options or SandboxOptions()
    user, secret = next(iter(options.users.items()))
    connector: dict[str, Any] = {
        "type": "population_db",
        "settings": {
            "endpoint": endpoint,
            "username": user,
            "secret": secret,
            "api_key": options.api_keys[0],
            "account": user,
            **HUB_SETTINGS,
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
                "operation": LOOKUP_OPERATION,
                "description": "Look a citizen up in the national population DB",
            },
            VERIFY_SERVICE: {
                "connector": instance,
                "operation": VERIFY_OPERATION,
                "description": "Verify a citizen's name and birth date against the national population DB",
            },
        },
        "allowed": list(SERVICES),
    }


__all__ = [
    "CONNECTOR_INSTANCE",
    "LOOKUP_SERVICE",
    "PROVIDER",
    "SERVICES",
    "VERIFY_SERVICE",
    "population_fragment",
]
