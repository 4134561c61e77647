"""Start a real hub (gateway on uvicorn, workers, broker, store) and real backends for tests."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hub.registry import ConnectorRegistry
from hub.runtime import Hub
from hub.serving import AppServer
from hub.settings import load_settings
from tests.conftest import unique_namespace

CLIENT = "VN/GOV/000.00.00.H40/one-stop"
OTHER_CLIENT = "VN/GOV/000.00.00.H41/one-stop"
KEY = "test-key"
OTHER_KEY = "other-key"
PROVIDER = "VN/GOV/000.00.00.H40/backend"


class Backend:
    """A real local HTTP backend that records what reached it."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.delay = 0.0
        self.fail_next = 0
        self.server = AppServer(
            Starlette(
                routes=[
                    Route("/{path:path}", self._handle, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
                ]
            )
        )

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        self.calls.append(
            {
                "method": request.method,
                "path": request.url.path,
                "query": str(request.query_params),
                "headers": dict(request.headers),
                "body": body,
            }
        )
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_next > 0:
            self.fail_next -= 1
            return JSONResponse({"error": "temporarily broken"}, status_code=503)
        if request.url.path.startswith("/missing"):
            return JSONResponse({"error": "no such record"}, status_code=404)
        return JSONResponse(
            {
                "path": request.url.path,
                "size": len(body),
                "method": request.method,
                "query": dict(request.query_params),
            },
            headers={"X-Backend": "yes", "Connection": "keep-alive"},
        )

    @property
    def url(self) -> str:
        return self.server.url


def hub_config(backend_url: str, *, broker_url: str, store_url: str, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "broker": {"url": broker_url, "namespace": unique_namespace()},
        "store": {"url": store_url},
        "gateway": {"request_timeout": 3.0, "max_body_bytes": 64 * 1024},
        "members": {CLIENT: {"api_keys": [KEY]}, OTHER_CLIENT: {"api_keys": [OTHER_KEY]}},
        "connectors": {
            "backend": {
                "type": "rest",
                "settings": {"base_url": backend_url, "read_timeout": 1.0},
                "retry": {"attempts": 2, "backoff": 0.05},
            },
            "down": {
                "type": "rest",
                "settings": {"base_url": "http://127.0.0.1:9", "connect_timeout": 0.5},
                "retry": {"attempts": 2, "backoff": 0.05},
            },
        },
        "services": {
            f"{PROVIDER}/echo/v1": {"connector": "backend", "description": "echo"},
            f"{PROVIDER}/plain": {"connector": "backend"},
            f"{PROVIDER}/down/v1": {"connector": "down"},
            f"{PROVIDER}/private/v1": {"connector": "backend"},
        },
        "acl": [
            {
                "client": CLIENT,
                "services": [f"{PROVIDER}/echo/v1", f"{PROVIDER}/plain", f"{PROVIDER}/down/v1"],
            },
            {"client": OTHER_CLIENT, "services": [f"{PROVIDER}/private/v1"]},
        ],
    }
    for key, value in overrides.items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    return config


@dataclass
class RunningHub:
    hub: Hub
    gateway: AppServer
    http: httpx.AsyncClient

    def headers(self, client: str = CLIENT, key: str = KEY, **extra: str) -> dict[str, str]:
        return {"X-Road-Client": client, "X-Api-Key": key, **extra}


@contextlib.asynccontextmanager
async def running_hub(
    config: dict[str, Any], *, workers: bool = True, registry: ConnectorRegistry | None = None
) -> AsyncIterator[RunningHub]:
    settings = load_settings(data=config, environ={})
    hub = Hub.create(settings, registry=registry)
    await hub.start()
    try:
        if workers:
            await hub.start_workers()
        await hub.start_extensions(workers=workers)
        gateway = await AppServer(hub.gateway_app()).start()
        try:
            async with httpx.AsyncClient(base_url=gateway.url, timeout=15) as http:
                yield RunningHub(hub, gateway, http)
        finally:
            await gateway.stop()
    finally:
        await hub.stop(timeout=5)


@contextlib.asynccontextmanager
async def running_embedded(tmp_path: Path) -> AsyncIterator[tuple["Backend", RunningHub]]:
    """A backend, and a hub in front of it on the embedded broker with a SQLite store in `tmp_path`."""
    async with running_backend() as backend:
        config = hub_config(
            backend.url, broker_url="embedded://", store_url=f"sqlite+aiosqlite:///{tmp_path}/h.db"
        )
        async with running_hub(config) as running:
            yield backend, running


@contextlib.asynccontextmanager
async def running_backend() -> AsyncIterator[Backend]:
    backend = Backend()
    await backend.server.start()
    try:
        yield backend
    finally:
        await backend.server.stop()
