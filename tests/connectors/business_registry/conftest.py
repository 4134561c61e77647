"""The business registry sandbox as a real uvicorn server on 127.0.0.1, and connectors pointed at it."""

import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from connectors.business_registry import BusinessRegistryConnector
from connectors.business_registry.data import Registry
from connectors.business_registry.sandbox import SANDBOX_CREDENTIALS, SandboxState, create_app
from hub.connector import ConnectorContext, ConnectorRequest
from hub.identifiers import ServiceId
from tests.conftest import free_port

SEED = 7
SIZE = 50_000
SEARCH_LIMIT = 10_000  # the name index covers the first 10,000 enterprises: quick to build in tests
SERVICE = ServiceId.parse("VN/GOV/000.00.00.G22/business/enterprise-lookup/v1")
CLIENT = "VN/GOV/000.00.00.H40/one-stop"


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run ``app`` under uvicorn in a thread on a free 127.0.0.1 port; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"sandbox-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the sandbox server did not start within 10 s")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@dataclass(frozen=True)
class Sandbox:
    """A running sandbox: its URL, live state (counters, faults) and registry."""

    url: str
    app: FastAPI

    @property
    def state(self) -> SandboxState:
        state: SandboxState = self.app.state.sandbox
        return state

    @property
    def registry(self) -> Registry:
        registry: Registry = self.app.state.registry
        return registry


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[Sandbox]:
    app = create_app(seed=SEED, size=SIZE, search_limit=SEARCH_LIMIT)
    with serve(app) as url:
        yield Sandbox(url, app)


@pytest.fixture
def sandbox(sandbox_server: Sandbox) -> Sandbox:
    """The session's sandbox with counters zeroed and every fault off."""
    state = sandbox_server.state
    state.reset()
    state.latency_ms = state.latency_jitter_ms = state.error_rate = 0.0
    state.rate_limit = state.retry_after = None
    state.down = False
    return sandbox_server


def connector_settings(url: str, **overrides: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "base_url": url,
        "access_key": SANDBOX_CREDENTIALS["AccessKey"],
        "secret_key": SANDBOX_CREDENTIALS["SecretKey"],
        "app_name": SANDBOX_CREDENTIALS["AppName"],
        "partner_code": SANDBOX_CREDENTIALS["PartnerCode"],
        "partner_code_cus": SANDBOX_CREDENTIALS["PartnerCodeCus"],
        "connect_timeout": 1.0,
        "read_timeout": 2.0,
        "total_timeout": 3.0,
        "rate_limit_timeout": 2.0,
    }
    settings.update(overrides)
    return settings


MakeConnector = Callable[..., BusinessRegistryConnector]


@pytest.fixture
async def make_connector(sandbox: Sandbox) -> AsyncIterator[MakeConnector]:
    """Build connectors against the sandbox (``cache=``, ``rate_limiter=``, settings overrides); closes them."""
    made: list[BusinessRegistryConnector] = []

    def make(*, cache: Any = None, rate_limiter: Any = None, **overrides: Any) -> BusinessRegistryConnector:
        context = ConnectorContext(
            instance=f"test-{uuid.uuid4().hex[:8]}", cache=cache, rate_limiter=rate_limiter
        )
        connector = BusinessRegistryConnector.create(connector_settings(sandbox.url, **overrides), context)
        made.append(connector)
        return connector

    yield make
    for connector in made:
        await connector.close()


def lookup(code: str, headers: Mapping[str, str] | None = None) -> ConnectorRequest:
    """An ``enterprise-lookup`` request as the worker hands it over."""
    return ConnectorRequest(
        operation="enterprise-lookup",
        service=SERVICE,
        client=CLIENT,
        message_id=uuid.uuid4().hex,
        body=json.dumps({"enterprise_code": code}).encode(),
        headers=dict(headers or {}),
    )


def search(name: str, page: int = 1, page_size: int = 20) -> ConnectorRequest:
    """An ``enterprise-search`` request."""
    return ConnectorRequest(
        operation="enterprise-search",
        service=SERVICE,
        client=CLIENT,
        message_id=uuid.uuid4().hex,
        body=json.dumps({"name": name, "page": page, "page_size": page_size}).encode(),
    )
