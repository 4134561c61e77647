"""Outbound HTTP for connectors: httpx's API over aiohttp's client (the httpx-aiohttp transport).

httpx's default transport (httpcore + h11 + anyio) was half of the hub's CPU per request in
bench/query_overhead.py (≈1.6 ms of CPU per call at 32 in flight here), and one shared AsyncClient
rescans its whole connection pool per request (encode/httpx#3215, encode/httpcore#1035). aiohttp's
client, with its C parser and one keep-alive pool per connector instance, does the same HTTP/1.1
work for ≈0.27 ms; connectors keep httpx's API, exceptions and MockTransport seam.

Forwarding connectors use `ClientPool.exchange`, which hands the request to aiohttp as it is:
building httpx's Request and Response objects around each call (URL parsing and header
normalisation in pure Python) cost ≈0.15 ms of CPU per request, as much as aiohttp's own work.
Over any other transport (`httpx.MockTransport` in tests) it goes through httpx as before, with
the same result and the same httpx errors.
"""

import asyncio
import contextlib
import ssl
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport
from httpx_aiohttp.transport import map_aiohttp_exceptions
from multidict import CIMultiDictProxy
from pydantic import Field
from yarl import URL

from hub.connector import ConnectorSettings
from hub.errors import BackendTimeout, BackendUnavailable

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


class HttpSettings(ConnectorSettings):
    """Timeouts and the connection limit shared by HTTP-based connectors."""

    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    write_timeout: float = 30.0
    pool_timeout: float = 5.0
    max_connections: int = Field(64, ge=1, description="open connections to the backend at most")
    keepalive_expiry: float = Field(5.0, ge=0, description="seconds an idle connection is kept")
    verify_tls: bool = True


_TIMEOUTS = (asyncio.TimeoutError, aiohttp.ServerTimeoutError)


# aiohttp's own defaults: a request forwarded for a client carries the client's values or none (a
# backend told "Accept-Encoding: gzip" on behalf of a client that never said so may answer in gzip).
_CLIENT_DEFAULTS = frozenset({"Accept", "Accept-Encoding", "User-Agent"})


class HubAiohttpTransport(AiohttpTransport):
    """httpx-aiohttp's transport, with connection failures reported as what they are.

    httpx-aiohttp maps every `aiohttp.ClientConnectionError` (refused, reset, disconnected) to
    `httpx.ConnectTimeout`; the hub's failure table must tell a backend that is down (502) from one
    that is slow (504), so those become `httpx.ConnectError` / `httpx.ReadError` here. Its aiohttp
    session keeps no cookies: the hub forwards for many clients, so none may carry over. Nor does it add
    aiohttp's default Accept, Accept-Encoding or User-Agent: a request carries its sender's or none.
    """

    def get_client(self) -> aiohttp.ClientSession:
        if self.client is not None or self.uds:
            return super().get_client()
        limit = {"limit": self.limits.max_connections} if self.limits.max_connections is not None else {}
        connector = aiohttp.TCPConnector(
            keepalive_timeout=self.limits.keepalive_expiry,
            ssl=self.ssl_context,
            local_addr=(self.local_address, 0) if self.local_address else None,
            **limit,  # type: ignore[arg-type]
        )
        return aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar(), skip_auto_headers=_CLIENT_DEFAULTS
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        with _connection_errors(request):
            return await super().handle_async_request(request)

    async def exchange(
        self,
        method: str,
        url: URL,
        headers: Mapping[str, str],
        content: bytes,
        timeout: aiohttp.ClientTimeout,
    ) -> "tuple[int, CIMultiDictProxy[str], bytes]":
        """One request straight on aiohttp: status, headers and body as received (undecoded).

        Raises:
            httpx.TransportError: as `handle_async_request` raises for the same failure.
        """
        if not isinstance(self.client, aiohttp.ClientSession):
            self.client = self.get_client()
        with _connection_errors(None), map_aiohttp_exceptions():
            response = await self.client.request(
                method,
                url,
                headers=headers,
                data=content or None,
                allow_redirects=False,
                auto_decompress=False,
                compress=False,
                timeout=timeout,
            )
        try:
            with map_aiohttp_exceptions():
                body = await response.read()
        except httpx.ConnectTimeout as exc:  # a body cut off mid-read, as in ClientPool.send
            raise httpx.ReadError(str(exc)) from exc
        finally:
            response.release()
        return response.status, response.headers, body


@contextlib.contextmanager
def _connection_errors(request: httpx.Request | None) -> Iterator[None]:
    # See HubAiohttpTransport: a connection failure is not a timeout.
    try:
        yield
    except httpx.ConnectTimeout as exc:
        cause = exc.__cause__
        if cause is None or isinstance(cause, _TIMEOUTS):
            raise
        kind = httpx.ConnectError if isinstance(cause, aiohttp.ClientConnectorError) else httpx.ReadError
        raise kind(str(cause) or type(cause).__name__, request=request) from cause
    except aiohttp.ClientError as exc:  # left unmapped by httpx-aiohttp, e.g. a bad status line
        raise httpx.RemoteProtocolError(str(exc) or type(exc).__name__, request=request) from exc


def fast_transport(
    max_connections: int, *, keepalive_expiry: float = 5.0, verify: ssl.SSLContext | bool = True
) -> HubAiohttpTransport:
    """The hub's outbound transport for an `httpx.AsyncClient(transport=...)` (see the module docstring)."""
    if verify is True:
        verify = ssl.create_default_context()
    return HubAiohttpTransport(
        verify=verify,
        trust_env=False,
        limits=httpx.Limits(max_connections=max_connections, keepalive_expiry=keepalive_expiry),
    )


@dataclass(frozen=True, slots=True)
class Answer:
    """A backend's answer as received: header names lower-cased, a repeated header's values joined
    with ", " (as httpx does), the body undecoded."""

    status_code: int
    headers: Mapping[str, str]
    body: bytes


def _joined(items: Any) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in items:
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


class ClientPool:
    """One connector instance's outbound HTTP: `client()` for httpx's API, `exchange()` (or `send()`)
    for forwarding."""

    def __init__(
        self,
        settings: HttpSettings,
        *,
        base_url: str = "",
        headers: Mapping[str, str] | None = None,
        transport_factory: Any = None,
    ) -> None:
        self._timeout = httpx.Timeout(
            connect=settings.connect_timeout,
            read=settings.read_timeout,
            write=settings.write_timeout,
            pool=settings.pool_timeout,
        ).as_dict()
        self._aiohttp_timeout = aiohttp.ClientTimeout(
            sock_connect=settings.connect_timeout,
            sock_read=settings.read_timeout,
            connect=settings.pool_timeout,
        )
        self._headers = {k.lower(): v for k, v in (headers or {}).items()}
        self._transport: httpx.AsyncBaseTransport = (
            transport_factory()
            if transport_factory
            else fast_transport(
                settings.max_connections,
                keepalive_expiry=settings.keepalive_expiry,
                verify=settings.verify_tls,
            )
        )
        self._client = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(**self._timeout),
            headers=self._headers,
            follow_redirects=False,
            trust_env=False,
            transport=self._transport,
        )

    def client(self) -> httpx.AsyncClient:
        return self._client

    async def exchange(
        self,
        method: str,
        url: str,
        *,
        params: Sequence[tuple[str, str]] = (),
        headers: Mapping[str, str] | None = None,
        content: bytes = b"",
    ) -> Answer:
        """Send one request as `send` does (see there) and return the backend's answer.

        The URL and query are encoded as httpx encodes them (`params` replace the URL's query).

        Raises:
            httpx.TransportError: connect, read, write or pool failures (httpx's own types).
        """
        if not isinstance(self._transport, HubAiohttpTransport):
            response, body = await self.send(method, url, params=params, headers=headers, content=content)
            return Answer(response.status_code, _joined(response.headers.items()), body)
        target = URL(url)
        if params:
            target = target.with_query(list(params))
        merged = {**self._headers, **headers} if headers else self._headers
        status, raw_headers, body = await self._transport.exchange(
            method, target, merged, content, self._aiohttp_timeout
        )
        return Answer(status, _joined(raw_headers.items()), body)

    async def send(
        self,
        method: str,
        url: str,
        *,
        params: Sequence[tuple[str, str]] = (),
        headers: Mapping[str, str] | None = None,
        content: bytes = b"",
    ) -> tuple[httpx.Response, bytes]:
        """Send one request straight to the transport; the response and its body as received.

        No cookie jar, redirects, auth hooks or default headers: the hub forwards for many clients,
        so nothing may carry over from one request to the next, and the body is passed on with its
        own Content-Encoding (undecoded). The pool's configured headers are added.

        Raises:
            httpx.TransportError: connect, read, write or pool failures (httpx's own types).
        """
        request = httpx.Request(
            method,
            url,
            params=list(params) or None,
            headers={**self._headers, **headers} if headers else self._headers,
            content=content,
            extensions={"timeout": self._timeout},
        )
        response = await self._transport.handle_async_request(request)
        try:
            body = b"".join([chunk async for chunk in response.aiter_raw()])
        except httpx.ConnectTimeout as exc:  # a body cut off mid-read: see HubAiohttpTransport
            raise httpx.ReadError(str(exc), request=request) from exc
        finally:
            await response.aclose()
        return response, body

    async def aclose(self) -> None:
        await self._client.aclose()
        await self._transport.aclose()


@contextlib.contextmanager
def backend_errors(instance: str, target: str) -> Iterator[None]:
    """Translate httpx's transport failures into the hub's connector errors, once for every connector.

    Raises:
        BackendTimeout: no answer in time (the worker retries it, then 504).
        BackendUnavailable: refused, reset or broken (the worker retries it, then 502).
    """
    try:
        yield
    except httpx.TimeoutException as exc:
        raise BackendTimeout(f"{instance}: no answer from {target} in time", connector=instance) from exc
    except httpx.TransportError as exc:
        raise BackendUnavailable(
            f"{instance}: cannot reach {target} ({type(exc).__name__})", connector=instance
        ) from exc


def end_to_end(headers: Mapping[str, str], *, drop: frozenset[str] = frozenset()) -> dict[str, str]:
    """Headers without hop-by-hop ones (and any named in `drop`), names lower-cased."""
    connection_tokens = {t.strip().lower() for t in headers.get("connection", "").split(",") if t.strip()}
    return {
        k.lower(): v
        for k, v in headers.items()
        if k.lower() not in HOP_BY_HOP and k.lower() not in connection_tokens and k.lower() not in drop
    }


__all__ = [
    "HOP_BY_HOP",
    "ClientPool",
    "HttpSettings",
    "HubAiohttpTransport",
    "backend_errors",
    "end_to_end",
    "fast_transport",
]
