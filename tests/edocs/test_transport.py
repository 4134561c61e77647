"""The push seam's contract, run over the real httpx transport (a local HTTP server) and its twin."""

from collections.abc import AsyncIterator, Callable

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hub.edocs.errors import DeliveryFailed
from hub.edocs.transport import HttpPushTransport, MemoryPushTransport, PushRequest, PushTransport
from hub.serving import AppServer, free_port

Outcome = Callable[[], int]


class Endpoints:
    """Endpoints answering a fixed status at `url(status)`, plus an unreachable one."""

    def __init__(self, transport: PushTransport, base: str) -> None:
        self.transport = transport
        self.base = base
        self.seen: list[tuple[bytes, dict[str, str]]] = []

    def url(self, status: int) -> str:
        return f"{self.base}/status/{status}"


async def _body() -> AsyncIterator[bytes]:
    yield b"<edXML>"
    yield b"</edXML>"


@pytest.fixture(params=["http", "memory"])
async def endpoints(request: pytest.FixtureRequest) -> AsyncIterator[Endpoints]:
    if request.param == "memory":
        memory = MemoryPushTransport()
        base = "http://memory.invalid"
        found = Endpoints(memory, base)
        for status in (200, 202, 404, 408, 429, 500, 503):
            memory.responders[found.url(status)] = lambda received, s=status: (
                found.seen.append((received.body, received.headers)) or s
            )
        yield found
        return
    holder: list[Endpoints] = []

    async def answer(req: Request) -> Response:
        holder[0].seen.append((await req.body(), {k.lower(): v for k, v in req.headers.items()}))
        return Response(status_code=int(req.path_params["status"]))

    server = await AppServer(Starlette(routes=[Route("/status/{status}", answer, methods=["POST"])])).start()
    transport = HttpPushTransport(timeout=2.0)
    found = Endpoints(transport, server.url)
    holder.append(found)
    try:
        yield found
    finally:
        await transport.close()
        await server.stop()


@pytest.mark.parametrize("status", [200, 202])
async def test_transport_2xx_is_delivered_with_body_and_headers(endpoints: Endpoints, status: int) -> None:
    # When a push is answered 2xx
    got = await endpoints.transport.push(
        PushRequest(endpoints.url(status), _body(), {"Idempotency-Key": "edoc:1:H40.12"})
    )
    # Then it is delivered, and the endpoint saw the whole body and the idempotency key
    assert got == status
    body, headers = endpoints.seen[-1]
    assert body == b"<edXML></edXML>" and headers["idempotency-key"] == "edoc:1:H40.12"


@pytest.mark.parametrize(
    ("status", "permanent"), [(404, True), (408, False), (429, False), (500, False), (503, False)]
)
async def test_transport_failures_are_retryable_or_permanent(
    endpoints: Endpoints, status: int, permanent: bool
) -> None:
    with pytest.raises(DeliveryFailed) as caught:
        await endpoints.transport.push(PushRequest(endpoints.url(status), _body()))
    assert caught.value.permanent is permanent and caught.value.status_code == status


async def test_transport_unreachable_endpoint_is_retryable(endpoints: Endpoints) -> None:
    url = (
        f"http://127.0.0.1:{free_port()}/none"
        if isinstance(endpoints.transport, HttpPushTransport)
        else "http://gone.invalid/"
    )
    with pytest.raises(DeliveryFailed) as caught:
        await endpoints.transport.push(PushRequest(url, _body()))
    assert caught.value.permanent is False and caught.value.status_code is None
