"""The core demo flow: a small local backend behind the generic REST connector."""

import asyncio
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hub.demo.flow import DemoContext, DemoFlow, Outcome, Scenario, expect_status
from hub.serving import AppServer, free_port

_PROVIDER = "VN/GOV/000.00.00.H40/demo"


async def _echo(request: Request) -> JSONResponse:
    body = await request.body()
    return JSONResponse(
        {
            "received_bytes": len(body),
            "path": request.url.path,
            "x_road_client": request.headers.get("x-road-client"),
            "x_road_id": request.headers.get("x-road-id"),
        }
    )


async def _slow(request: Request) -> JSONResponse:
    await asyncio.sleep(2.0)
    return JSONResponse({"late": True})


def backend_app() -> Starlette:
    """The demo's local backend: /echo answers at once, /slow after two seconds."""
    return Starlette(
        routes=[Route("/echo/{rest:path}", _echo, methods=["GET", "POST"]), Route("/slow", _slow)]
    )


class CoreFlow(DemoFlow):
    name = "core"

    def __init__(self) -> None:
        self._backend = AppServer(backend_app())

    async def start(self) -> dict[str, Any]:
        await self._backend.start()
        closed_port = free_port()
        fast = {"read_timeout": 5.0}
        return {
            "connectors": {
                "demo-backend": {
                    "type": "rest",
                    "settings": {"base_url": f"{self._backend.url}/echo", **fast},
                },
                "demo-slow": {
                    "type": "rest",
                    "settings": {"base_url": f"{self._backend.url}/slow", "read_timeout": 0.5},
                    "retry": {"attempts": 2, "backoff": 0.1},
                },
                "demo-down": {
                    "type": "rest",
                    "settings": {"base_url": f"http://127.0.0.1:{closed_port}", "connect_timeout": 0.5},
                    "retry": {"attempts": 2, "backoff": 0.1},
                },
            },
            "services": {
                f"{_PROVIDER}/echo/v1": {"connector": "demo-backend", "description": "echo backend"},
                f"{_PROVIDER}/slow/v1": {
                    "connector": "demo-slow",
                    "description": "a backend slower than its timeout",
                },
                f"{_PROVIDER}/down/v1": {
                    "connector": "demo-down",
                    "description": "a backend that is not running",
                },
                f"{_PROVIDER}/restricted/v1": {
                    "connector": "demo-backend",
                    "description": "not granted to the demo client",
                },
            },
            "allowed": [f"{_PROVIDER}/echo/v1", f"{_PROVIDER}/slow/v1", f"{_PROVIDER}/down/v1"],
        }

    def scenarios(self) -> list[Scenario]:
        base = f"/r1/{_PROVIDER}"

        async def success(ctx: DemoContext) -> Outcome:
            response = await ctx.http.post(
                f"{base}/echo/v1/hello", content=b"x" * 1024, headers=ctx.headers()
            )
            outcome = expect_status(200)(response)
            echoed = response.json().get("received_bytes") if outcome.ok else None
            return Outcome(outcome.ok and echoed == 1024, f"{outcome.got}, backend saw {echoed} bytes")

        async def unknown(ctx: DemoContext) -> Outcome:
            return expect_status(404, "Client.UnknownService")(
                await ctx.http.get(f"{base}/nothing-here/v1", headers=ctx.headers())
            )

        async def unauthorized(ctx: DemoContext) -> Outcome:
            headers = ctx.headers(**{"X-Api-Key": "wrong-key"})
            return expect_status(401, "Client.Unauthenticated")(
                await ctx.http.get(f"{base}/echo/v1", headers=headers)
            )

        async def not_allowed(ctx: DemoContext) -> Outcome:
            return expect_status(403, "Client.AccessDenied")(
                await ctx.http.get(f"{base}/restricted/v1", headers=ctx.headers())
            )

        async def down(ctx: DemoContext) -> Outcome:
            response = await ctx.http.get(f"{base}/down/v1", headers=ctx.headers())
            return expect_status(502, "Server.ServerProxy.BackendUnavailable")(response)

        async def slow(ctx: DemoContext) -> Outcome:
            response = await ctx.http.get(f"{base}/slow/v1", headers=ctx.headers())
            return expect_status(504, "Server.ServerProxy.BackendTimeout")(response)

        return [
            Scenario("success (1 KB through the hub)", "200", success),
            Scenario("unknown service", "404 Client.UnknownService", unknown),
            Scenario("unauthorized (wrong API key)", "401 Client.Unauthenticated", unauthorized),
            Scenario("not allowed (ACL)", "403 Client.AccessDenied", not_allowed),
            Scenario("backend down", "502 Server.ServerProxy.BackendUnavailable", down),
            Scenario("backend slow", "504 Server.ServerProxy.BackendTimeout", slow),
        ]

    async def stop(self) -> None:
        await self._backend.stop()
