"""The hub's outbound HTTP transport (httpx over aiohttp) against scripted raw servers on 127.0.0.1.

The property the hub relies on: every failure is an httpx error, and only real timeouts are
`httpx.TimeoutException` (a backend that is down must not look slow: 502, not 504).
"""

import asyncio
import contextlib
import datetime
import gzip
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
import uvloop
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hub.http import HubAiohttpTransport


def Http1Transport(
    *,
    max_connections: int = 100,
    keepalive_expiry: float = 5.0,
    verify: bool = True,
    ssl_context: ssl.SSLContext | None = None,
) -> HubAiohttpTransport:
    return HubAiohttpTransport(
        verify=ssl_context if ssl_context is not None else verify,
        trust_env=False,
        limits=httpx.Limits(max_connections=max_connections, keepalive_expiry=keepalive_expiry),
    )


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
TIMEOUTS = {"connect": 2.0, "read": 2.0, "write": 2.0, "pool": 2.0}


class Server:
    """A raw TCP server on 127.0.0.1 running `handler` per connection, counting connections."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.port = 0
        self.tasks: set[asyncio.Task[None]] = set()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # a cancelled handler ends quietly: asyncio's stream server would log it
        finally:
            writer.close()
            self.tasks.discard(task)

    def url(self, path: str = "/", scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"


@contextlib.asynccontextmanager
async def serving(handler: Handler, tls: ssl.SSLContext | None = None) -> AsyncIterator[Server]:
    server = Server(handler)
    listener = await asyncio.start_server(server._serve, "127.0.0.1", 0, ssl=tls)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listener.close()
        for task in list(server.tasks):
            task.cancel()
        await asyncio.gather(*server.tasks, return_exceptions=True)


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One request: its head, and its body (Content-Length or chunked)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lowered = head.lower()
    if b"transfer-encoding: chunked" in lowered:
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                return head, body
            body += chunk[:-2]
    for line in lowered.split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return head, await reader.readexactly(int(line.split(b":")[1]))
    return head, b""


def answer(body: bytes, *, status: bytes = b"200 OK", extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 %b\r\ncontent-length: %d\r\n%b\r\n%b" % (status, len(body), extra, body)


async def send(transport: Http1Transport, method: str, url: str, **kwargs: object) -> httpx.Response:
    request = httpx.Request(method, url, extensions={"timeout": TIMEOUTS}, **kwargs)  # type: ignore[arg-type]
    response = await transport.handle_async_request(request)
    await response.aread()
    return response


async def echo_forever(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        head, body = await read_request(reader)
        writer.write(answer(head.split(b" ")[1] + b"|" + body))


async def test_http_transport_reuses_one_connection_for_sequential_requests() -> None:
    # Given a keep-alive server
    async with serving(echo_forever) as server:
        transport = Http1Transport()
        # When three requests are sent one after the other
        bodies = [
            (await send(transport, "POST", server.url(f"/n{i}?q=1"), content=b"x" * i)).content
            for i in range(3)
        ]
        await transport.aclose()
    # Then each got its own answer over one connection
    assert bodies == [b"/n0?q=1|", b"/n1?q=1|x", b"/n2?q=1|xx"]
    assert server.connections == 1


async def test_http_transport_serves_concurrent_requests_up_to_the_connection_limit() -> None:
    # Given a server answering slowly and a transport allowed three connections
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            await asyncio.sleep(0.05)
            writer.write(answer(b"ok"))

    async with serving(slow) as server:
        transport = Http1Transport(max_connections=3)
        # When ten requests are in flight at once
        responses = await asyncio.gather(*(send(transport, "GET", server.url()) for _ in range(10)))
        await transport.aclose()
    # Then all are answered, over no more than three connections
    assert [r.content for r in responses] == [b"ok"] * 10
    assert server.connections == 3


async def test_http_transport_reads_chunked_and_close_delimited_bodies() -> None:
    # Given a server answering chunked first, then with a body ended by closing the connection
    async def chunked_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        )
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the end")
        await writer.drain()

    async with serving(chunked_then_close) as server:
        transport = Http1Transport()
        # When both are read
        chunked = await send(transport, "GET", server.url())
        delimited = await send(transport, "GET", server.url())
        await transport.aclose()
    # Then the bodies are whole, and the close-delimited connection was not reused
    assert chunked.content == b"hello world"
    assert delimited.content == b"until the end"
    assert server.connections == 1


async def test_http_transport_head_and_204_responses_have_no_body() -> None:
    # Given a server announcing a length on HEAD, and answering 204
    async def head_then_204(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head, _ = await read_request(reader)
            if head.startswith(b"HEAD"):
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1234\r\nx-kind: head\r\n\r\n")
            else:
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")

    async with serving(head_then_204) as server:
        transport = Http1Transport()
        # When a HEAD and a DELETE are sent
        head = await send(transport, "HEAD", server.url())
        deleted = await send(transport, "DELETE", server.url())
        await transport.aclose()
    # Then both end without a body
    assert (head.status_code, head.headers["x-kind"], head.content) == (200, "head", b"")
    assert (deleted.status_code, deleted.content) == (204, b"")


async def test_http_transport_skips_informational_responses() -> None:
    # Given a server sending 100 Continue before its answer
    async def continue_first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n" + answer(b"final", status=b"201 Created"))
        await asyncio.sleep(1)

    async with serving(continue_first) as server:
        transport = Http1Transport()
        response = await send(transport, "POST", server.url(), content=b"x")
        await transport.aclose()
    # Then the final response is the one returned
    assert (response.status_code, response.content) == (201, b"final")
    assert response.extensions["reason_phrase"] == b"Created"


async def test_http_transport_streams_a_request_body_chunked() -> None:
    # Given an echo server
    received: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head, body = await read_request(reader)
        received.append(head)
        writer.write(answer(body))

    async def parts() -> AsyncIterator[bytes]:
        for part in (b"one ", b"", b"two ", b"three"):
            yield part

    async with serving(record) as server:
        transport = Http1Transport()
        # When the body is an async stream of unknown length
        response = await send(transport, "POST", server.url(), content=parts())
        await transport.aclose()
    # Then it travels chunked and arrives whole
    assert b"transfer-encoding: chunked" in received[0].lower()
    assert response.content == b"one two three"


async def test_http_transport_replaces_a_connection_the_server_closed_while_idle() -> None:
    # Given a server that closes every connection after one answer, without saying so
    async def one_shot(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"once"))
        await writer.drain()

    async with serving(one_shot) as server:
        transport = Http1Transport()
        first = await send(transport, "GET", server.url())
        await asyncio.sleep(0.05)  # the close reaches the idle connection
        # When a second request is sent
        second = await send(transport, "GET", server.url())
        await transport.aclose()
    # Then it goes out on a new connection
    assert (first.content, second.content) == (b"once", b"once")
    assert server.connections == 2


async def test_http_transport_expires_idle_connections() -> None:
    # Given a transport keeping idle connections for 50 ms
    async with serving(echo_forever) as server:
        transport = Http1Transport(keepalive_expiry=0.05)
        await send(transport, "GET", server.url())
        await asyncio.sleep(0.1)
        # When the next request comes later than that
        await send(transport, "GET", server.url())
        await transport.aclose()
    # Then it did not reuse the expired connection
    assert server.connections == 2


@pytest.mark.parametrize(
    ("script", "error"),
    [
        (b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\ntoo short", httpx.ReadError),
        (b"this is not HTTP\r\n\r\n", httpx.RemoteProtocolError),
        (b"", httpx.ReadError),
    ],
    ids=["cut-mid-body", "malformed", "closed-before-answer"],
)
async def test_http_transport_broken_answers_raise_transport_errors_not_timeouts(
    script: bytes, error: type[Exception]
) -> None:
    # Given a server that answers badly and closes
    async def broken(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(script)
        await writer.drain()

    async with serving(broken) as server:
        transport = Http1Transport()
        # When a request is sent, then httpx's error type is raised, carrying the request
        with pytest.raises(error) as caught:
            await send(transport, "GET", server.url())
        await transport.aclose()
    assert not isinstance(caught.value, httpx.TimeoutException)
    assert caught.value.request.url == server.url()


async def test_http_transport_timeouts_and_refusals_raise_httpx_errors() -> None:
    # Given a server that never answers, and a port nobody listens on
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(10)

    async with serving(silent) as server:
        transport = Http1Transport(max_connections=1)
        short = {**TIMEOUTS, "read": 0.5, "pool": 0.05}
        slow = asyncio.ensure_future(
            transport.handle_async_request(httpx.Request("GET", server.url(), extensions={"timeout": short}))
        )
        await asyncio.sleep(0.02)
        # When a second request finds the only connection busy, then the pool times out
        with pytest.raises(httpx.TimeoutException):
            await transport.handle_async_request(
                httpx.Request("GET", server.url(), extensions={"timeout": short})
            )
        # And the first one's read times out
        with pytest.raises(httpx.ReadTimeout):
            await slow
        await transport.aclose()
    with socket_closed_port() as port, pytest.raises(httpx.ConnectError):
        await send(Http1Transport(), "GET", f"http://127.0.0.1:{port}/")
    with pytest.raises(httpx.UnsupportedProtocol):
        await send(Http1Transport(), "GET", "ftp://127.0.0.1/")


@contextlib.contextmanager
def socket_closed_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]  # bound, not listening: connections are refused


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)

    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


async def test_http_transport_tls_checks_the_server_certificate(tmp_path: Path) -> None:
    # Given a TLS server with a self-signed certificate
    cert, key = _self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    async with serving(echo_forever, tls=server_tls) as server:
        url = server.url("/secure", scheme="https")
        # When the client does not trust it, then the connection is refused
        with pytest.raises(httpx.ConnectError):
            await send(Http1Transport(), "GET", url)
        # When it trusts it (or verification is off), then the request goes through
        trusting = Http1Transport(ssl_context=ssl.create_default_context(cafile=str(cert)))
        assert (await send(trusting, "GET", url)).content == b"/secure|"
        assert (await send(Http1Transport(verify=False), "GET", url)).content == b"/secure|"
        await trusting.aclose()


async def test_http_transport_under_httpx_async_client_decodes_content() -> None:
    # Given a server answering gzip
    async def gzipped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(answer(gzip.compress(b"plain text"), extra=b"content-encoding: gzip\r\n"))

    # When it is called through httpx's client API
    async with serving(gzipped) as server, httpx.AsyncClient(transport=Http1Transport()) as client:
        response = await client.get(server.url())
    # Then httpx decodes it as with its own transport
    assert response.text == "plain text"


def test_http_transport_runs_on_uvloop() -> None:
    # Given uvloop, whose transports are not asyncio.Transport subclasses
    async def scenario() -> bytes:
        async with serving(echo_forever) as server:
            transport = Http1Transport()
            response = await send(transport, "POST", server.url("/uv"), content=b"loop")
            await transport.aclose()
            return response.content

    # When a request is sent, then it is answered
    assert uvloop.run(scenario()) == b"/uv|loop"
