"""ClientPool.exchange: straight on aiohttp, or through any httpx transport, with the same outcome.

Forwarding connectors use `exchange`; over the hub's aiohttp transport it skips httpx's Request and
Response objects, over any other transport (httpx.MockTransport in connector tests) it goes through
httpx. Both must put the same request on the wire and give back the same answer and errors.
"""

import asyncio
from collections.abc import Callable

import httpx
import pytest

from hub.http import Answer, ClientPool, HttpSettings, HubAiohttpTransport
from tests.hub.test_http_transport import answer, read_request, serving, socket_closed_port

FAST = HttpSettings(connect_timeout=1.0, read_timeout=0.5, write_timeout=1.0, pool_timeout=1.0)


def through_httpx(settings: HttpSettings = FAST) -> ClientPool:
    # The same aiohttp transport, seen only through httpx's transport interface: exchange() then
    # takes the generic path, as it does over httpx.MockTransport.
    class Wrapped(httpx.AsyncBaseTransport):
        def __init__(self) -> None:
            self.inner = HubAiohttpTransport(trust_env=False)

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            return await self.inner.handle_async_request(request)

        async def aclose(self) -> None:
            await self.inner.aclose()

    return ClientPool(settings, headers={"Authorization": "Bearer hub"}, transport_factory=Wrapped)


def straight(settings: HttpSettings = FAST) -> ClientPool:
    return ClientPool(settings, headers={"Authorization": "Bearer hub"})


POOLS: list[Callable[[], ClientPool]] = [straight, through_httpx]


async def test_client_pool_exchange_sends_and_answers_the_same_on_both_paths() -> None:
    # Given a server recording each request head and answering with repeated headers
    heads: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head, body = await read_request(reader)
            heads.append(head)
            extra = b"x-one: 1\r\nset-cookie: a=1\r\nset-cookie: b=2\r\nX-Mixed: Up\r\n"
            writer.write(answer(b"echo:" + body, status=b"201 Created", extra=extra))

    answers: list[Answer] = []
    async with serving(record) as server:
        for make in POOLS:
            pool = make()
            # When the same request goes out through each path
            answers.append(
                await pool.exchange(
                    "POST",
                    server.url("/base/hồ sơ/a|b"),
                    params=(("a", "1"), ("a", "2"), ("q", "x y&z")),
                    headers={"content-type": "application/json", "x-trace": "t1"},
                    content=b'{"n": 1}',
                )
            )
            await pool.aclose()
    # Then the request lines and the hub's headers are the same
    lines = [head.split(b"\r\n")[0] for head in heads]
    assert lines[0] == lines[1] == (b"POST /base/h%E1%BB%93%20s%C6%A1/a%7Cb?a=1&a=2&q=x+y%26z HTTP/1.1")
    for head in heads:
        lowered = head.lower()
        assert b"authorization: bearer hub" in lowered and b"x-trace: t1" in lowered
        assert b"content-length: 8" in lowered
        # and neither path adds an HTTP client's defaults the sender never chose
        assert (
            b"\r\naccept:" not in lowered
            and b"accept-encoding" not in lowered
            and b"user-agent" not in lowered
        )
    # And so are the answers: status, lower-cased headers with repeats joined, body as sent
    assert answers[0] == answers[1]
    assert answers[0].status_code == 201 and answers[0].body == b'echo:{"n": 1}'
    assert answers[0].headers["set-cookie"] == "a=1, b=2"
    assert answers[0].headers["x-mixed"] == "Up"


async def test_client_pool_exchange_keeps_no_cookie_between_calls() -> None:
    # Given a backend, reached by host name, that sets a cookie on every answer
    seen: list[bytes] = []

    async def cookie_setter(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head, _ = await read_request(reader)
            seen.append(head.lower())
            writer.write(answer(b"ok", extra=b"set-cookie: session=client-a; Path=/\r\n"))

    async with serving(cookie_setter) as server:
        for make in POOLS:
            pool = make()
            # When two calls follow each other (for two different clients)
            for _ in range(2):
                await pool.exchange("GET", f"http://localhost:{server.port}/x")
            await pool.aclose()
    # Then no call carried a cookie from an earlier answer
    assert len(seen) == 4
    assert not any(b"cookie:" in head for head in seen)


@pytest.mark.parametrize("make", POOLS, ids=["straight", "through-httpx"])
async def test_client_pool_exchange_failures_are_httpx_errors(make: Callable[[], ClientPool]) -> None:
    # Given a server that never answers, one that cuts its answer short, and one that answers junk
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(10)

    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\ntoo short")
        await writer.drain()

    async def junk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"this is not HTTP\r\n\r\n")
        await writer.drain()

    pool = make()
    # When each is called, then each failure is httpx's type for it: slow is not down
    async with serving(silent) as server:
        with pytest.raises(httpx.ReadTimeout):
            await pool.exchange("GET", server.url())
    async with serving(cut) as server:
        with pytest.raises(httpx.ReadError):
            await pool.exchange("GET", server.url())
    async with serving(junk) as server:
        with pytest.raises(httpx.RemoteProtocolError):
            await pool.exchange("GET", server.url())
    with socket_closed_port() as port, pytest.raises(httpx.ConnectError):
        await pool.exchange("GET", f"http://127.0.0.1:{port}/")
    await pool.aclose()
