"""The generic REST connector against a real local backend on 127.0.0.1."""

import asyncio
import gzip
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.rest import RestConnector, RestSettings
from hub.connector import ConnectorContext, ConnectorRequest
from hub.errors import BackendTimeout, BackendUnavailable
from hub.identifiers import ServiceId
from hub.serving import AppServer

SERVICE = ServiceId.parse("VN/GOV/000.00.00.H40/backend/echo/v1")


class Backend:
    """Records each request; answers by path."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.server = AppServer(
            Starlette(routes=[Route("/{path:path}", self.handle, methods=["GET", "POST"])])
        )

    async def handle(self, request: Request) -> Response:
        self.calls.append(
            {
                "method": request.method,
                "path": request.url.path,
                "query": request.url.query,
                "headers": dict(request.headers),
                "body": await request.body(),
            }
        )
        if request.url.path == "/gzip":
            return Response(gzip.compress(b"packed"), headers={"content-encoding": "gzip"})
        if request.url.path == "/cookie":
            return Response(b"set", headers={"set-cookie": "session=client-a"})
        if request.url.path == "/broken":
            return Response(b'{"error": "down"}', status_code=503, media_type="application/json")
        if request.url.path == "/slow":
            await asyncio.sleep(1.0)
        return Response(
            b"ok", media_type="text/plain", headers={"x-backend": "yes", "connection": "keep-alive"}
        )


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    backend = Backend()
    await backend.server.start()
    try:
        yield backend
    finally:
        await backend.server.stop()


def connector(base_url: str, **settings: Any) -> RestConnector:
    return RestConnector(RestSettings(base_url=base_url, **settings), ConnectorContext(instance="backend"))


def call(path: str, **fields: Any) -> ConnectorRequest:
    defaults: dict[str, Any] = {
        "operation": "*",
        "service": SERVICE,
        "client": "VN/GOV/000.00.00.H40/one-stop",
        "message_id": "id-1",
        "path": path,
    }
    return ConnectorRequest(**{**defaults, **fields})


async def test_rest_connector_forwards_method_path_query_body_and_end_to_end_headers(
    backend: Backend,
) -> None:
    # Given a connector with a configured header for the backend
    rest = connector(backend.server.url + "/base", headers={"Authorization": "Bearer hub"})
    # When a request with query, body and a mix of headers is forwarded
    reply = await rest.call(
        call(
            "items/7",
            method="POST",
            query=(("a", "1"), ("a", "2"), ("q", "x y")),
            headers={"accept": "text/plain", "connection": "close", "te": "trailers", "x-trace": "t1"},
            body=b'{"n": 1}',
            content_type="application/json",
        )
    )
    await rest.close()
    # Then the backend got them all, hop-by-hop headers dropped, the X-Road identity added
    seen = backend.calls[0]
    assert (seen["method"], seen["path"], seen["query"], seen["body"]) == (
        "POST",
        "/base/items/7",
        "a=1&a=2&q=x+y",
        b'{"n": 1}',
    )
    assert seen["headers"]["x-trace"] == "t1"
    assert seen["headers"]["authorization"] == "Bearer hub"
    assert seen["headers"]["content-type"] == "application/json"
    assert seen["headers"]["x-road-client"] == "VN/GOV/000.00.00.H40/one-stop"
    assert seen["headers"]["x-road-service"] == str(SERVICE)
    assert "te" not in seen["headers"] and seen["headers"].get("connection") != "close"
    # And the answer comes back with its end-to-end headers only
    assert (reply.status, reply.body, reply.content_type) == (200, b"ok", "text/plain; charset=utf-8")
    assert reply.headers["x-backend"] == "yes"
    assert "connection" not in reply.headers and "content-length" not in reply.headers


async def test_rest_connector_passes_an_encoded_body_through_undecoded(backend: Backend) -> None:
    # Given a backend answering gzip
    rest = connector(backend.server.url)
    # When the client asked for gzip
    reply = await rest.call(call("gzip", method="GET", headers={"accept-encoding": "gzip"}))
    await rest.close()
    # Then the hub forwards the compressed bytes with their Content-Encoding, as a proxy does
    assert reply.headers["content-encoding"] == "gzip"
    assert gzip.decompress(reply.body) == b"packed"


async def test_rest_connector_adds_no_header_the_client_did_not_send(backend: Backend) -> None:
    # Given a connector forwarding a client's request that names no encoding, media type or agent
    rest = connector(backend.server.url)
    await rest.call(call("plain", method="GET", headers={"x-trace": "t2"}))
    # When the client does name them
    await rest.call(
        call(
            "named",
            method="GET",
            headers={"accept-encoding": "br", "user-agent": "one-stop/2", "accept": "a/b"},
        )
    )
    await rest.close()
    # Then the backend sees no HTTP client's defaults in the first (it could answer gzip to a client
    # that cannot read it), and exactly the client's values in the second
    first, second = (call["headers"] for call in backend.calls)
    assert not {"accept-encoding", "user-agent", "accept"} & set(first), first
    assert (second["accept-encoding"], second["user-agent"], second["accept"]) == ("br", "one-stop/2", "a/b")


async def test_rest_connector_carries_no_cookie_from_one_call_to_the_next(backend: Backend) -> None:
    # Given a backend that sets a cookie on one client's call
    rest = connector(backend.server.url)
    await rest.call(call("cookie", method="GET"))
    # When another call follows
    await rest.call(call("next", method="GET", client="VN/GOV/000.00.00.H41/other"))
    await rest.close()
    # Then the cookie was not replayed to the backend on the other client's behalf
    assert "cookie" not in backend.calls[1]["headers"]


async def test_rest_connector_turns_5xx_timeouts_and_refusals_into_retryable_errors(backend: Backend) -> None:
    # Given a failing backend, a slow one and an address nobody listens on
    rest = connector(backend.server.url, read_timeout=0.2)
    down = connector("http://127.0.0.1:9", connect_timeout=0.5)
    # When each is called, then the hub's error carries what the backend said
    with pytest.raises(BackendUnavailable) as broken:
        await rest.call(call("broken", method="GET"))
    assert (broken.value.body, broken.value.content_type) == (b'{"error": "down"}', "application/json")
    with pytest.raises(BackendTimeout):
        await rest.call(call("slow", method="GET"))
    with pytest.raises(BackendUnavailable):
        await down.call(call("x", method="GET"))
    await rest.close()
    await down.close()
