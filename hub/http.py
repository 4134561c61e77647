"""Outbound HTTP for connectors: a small pool of httpx.AsyncClients with every timeout on.

One AsyncClient shared by many concurrent tasks is slow here: httpcore's pool rescans every
connection per request (encode/httpx#3215, encode/httpcore#1035), so 32 tasks on one client reach
≈150 req/s where 32 clients reach ≈800 req/s. The pool spreads requests round-robin over
`clients` clients, each holding few connections; bench/query_overhead.py measures the layout.
"""

import itertools
import ssl
from collections.abc import Mapping
from typing import Any

import httpx

from hub.connector import ConnectorSettings

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
    """Timeouts and pool layout shared by HTTP-based connectors."""

    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    write_timeout: float = 30.0
    pool_timeout: float = 5.0
    clients: int = 16
    connections_per_client: int = 4
    verify_tls: bool = True


class ClientPool:
    """Round-robin over several AsyncClients (see the module docstring for why)."""

    def __init__(
        self,
        settings: HttpSettings,
        *,
        base_url: str = "",
        headers: Mapping[str, str] | None = None,
        transport_factory: Any = None,
    ) -> None:
        timeout = httpx.Timeout(
            connect=settings.connect_timeout,
            read=settings.read_timeout,
            write=settings.write_timeout,
            pool=settings.pool_timeout,
        )
        limits = httpx.Limits(
            max_connections=settings.connections_per_client,
            max_keepalive_connections=settings.connections_per_client,
        )
        # One TLS context for the whole pool: building one costs ~20 ms of CPU.
        tls: ssl.SSLContext | bool = ssl.create_default_context() if settings.verify_tls else False
        self._clients = [
            httpx.AsyncClient(
                base_url=base_url,
                timeout=timeout,
                limits=limits,
                headers=dict(headers or {}),
                verify=tls,
                follow_redirects=False,
                trust_env=False,
                transport=transport_factory() if transport_factory else None,
            )
            for _ in range(max(1, settings.clients))
        ]
        self._next = itertools.cycle(self._clients)

    def client(self) -> httpx.AsyncClient:
        return next(self._next)

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()


def end_to_end(headers: Mapping[str, str], *, drop: frozenset[str] = frozenset()) -> dict[str, str]:
    """Headers without hop-by-hop ones (and any named in `drop`), names lower-cased."""
    connection_tokens = {t.strip().lower() for t in headers.get("connection", "").split(",") if t.strip()}
    return {
        k.lower(): v
        for k, v in headers.items()
        if k.lower() not in HOP_BY_HOP and k.lower() not in connection_tokens and k.lower() not in drop
    }


__all__ = ["HOP_BY_HOP", "ClientPool", "HttpSettings", "end_to_end"]
