"""The population DB sandbox as a real uvicorn server on 127.0.0.1, and a connector pointed at it."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

import pytest
import uvicorn

from connectors.population_db import PopulationDbConnector, PopulationDbSettings
from connectors.population_db._soap import signature
from connectors.population_db.sandbox import PopulationSandbox, create_app
from hub.connector import ConnectorRequest
from hub.identifiers import ServiceId
from tests.conftest import free_port

SANDBOX_PATH = "/dancuquocgia"
USER, SECRET, API_KEY = "lgsp-hub", "sandbox-secret", "sandbox-api-key"
HUB_CLIENT = "VN/GOV/000.00.00.H40/lgsp"
SERVICES = {
    "citizen-lookup": ServiceId.parse("VN/GOV/000.00.00.G06/population/citizen-lookup/v1"),
    "citizen-verify": ServiceId.parse("VN/GOV/000.00.00.G06/population/citizen-verify/v1"),
}


@dataclass(frozen=True)
class RunningSandbox:
    """A sandbox served by uvicorn; ``url`` is its SOAP endpoint."""

    url: str
    sandbox: PopulationSandbox


StartSandbox = Callable[..., Awaitable[RunningSandbox]]


@pytest.fixture
async def start_sandbox() -> AsyncIterator[StartSandbox]:
    servers: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []

    async def start(**options: Any) -> RunningSandbox:
        app = create_app(**options)
        port = free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            loop="asyncio",
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        servers.append((server, task))
        for _ in range(500):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        assert server.started, "the sandbox did not start within 5 s"
        return RunningSandbox(f"http://127.0.0.1:{port}{app.state.sandbox.options.path}", app.state.sandbox)

    yield start
    for server, _ in servers:
        server.should_exit = True
    await asyncio.wait_for(asyncio.gather(*(task for _, task in servers)), timeout=10)


@pytest.fixture
async def sandbox(start_sandbox: StartSandbox) -> RunningSandbox:
    return await start_sandbox()


def settings(endpoint: str, **overrides: Any) -> PopulationDbSettings:
    values: dict[str, Any] = {
        "endpoint": endpoint,
        "username": USER,
        "secret": SECRET,
        "api_key": API_KEY,
        "x_road_client": HUB_CLIENT,
        "public_service_code": "1.001001",
        "officer_id": "001096001005",
        "unit_code": "000.00.00.H40",
        "account": USER,
        "timeout_seconds": 2.0,
    }
    values.update(overrides)
    return PopulationDbSettings.model_validate(values)


@pytest.fixture
async def connector(sandbox: RunningSandbox) -> AsyncIterator[PopulationDbConnector]:
    built = PopulationDbConnector(settings(sandbox.url))
    yield built
    await built.close()


def json_request(operation: str, body: bytes | str, *, message_id: str | None = None) -> ConnectorRequest:
    return ConnectorRequest(
        operation=operation,
        service=SERVICES[operation],
        client="VN/GOV/000.00.00.H40/one-stop",
        message_id=message_id or str(uuid.uuid4()),
        body=body.encode() if isinstance(body, str) else body,
        content_type="application/json",
    )


def soap_request(operation: str, body: bytes, *, message_id: str | None = None) -> ConnectorRequest:
    return ConnectorRequest(
        operation=operation,
        service=SERVICES[operation],
        client="VN/GOV/000.00.00.H40/one-stop",
        message_id=message_id or str(uuid.uuid4()),
        body=body,
        content_type="text/xml; charset=utf-8",
    )


def auth_headers(
    url: str,
    *,
    user: str = USER,
    secret: str = SECRET,
    api_key: str = API_KEY,
    client: str = HUB_CLIENT,
    timestamp_ms: int | None = None,
) -> dict[str, str]:
    """The national auth headers, computed the way the national system specifies them."""
    timestamp = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
    return {
        "Content-Type": "text/xml; charset=utf-8",
        "SOAPAction": '""',
        "Timestamp": str(timestamp),
        "ApiKey": api_key,
        "X-Road-Client": client,
        "Authorization": signature(url, user, timestamp, secret),
    }


def national_envelope(operation: str = "TraCuuThongTinCongDan", /, **fields: str | None) -> bytes:
    """A national request envelope; ``None`` omits a field, ``NgayThangNamSinh`` takes inner XML."""
    values: dict[str, str | None] = {
        "MaYeuCau": uuid.uuid4().hex,
        "MaDVC": "1.001001",
        "MaTichHop": "037",
        "MaCanBo": "001096001005",
        "MaDonVi": "000.00.00.H40",
        "TaiKhoan": USER,
    }
    values.update(fields)
    parts = []
    for name, value in values.items():
        if value is None:
            continue
        inner = value if name == "NgayThangNamSinh" else escape(value)
        parts.append(f"<dc:{name}>{inner}</dc:{name}>")
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:dc="http://dancuquocgia.bca">'
        f"<soap:Header/><soap:Body><dc:{operation}>{''.join(parts)}</dc:{operation}></soap:Body></soap:Envelope>"
    ).encode()
