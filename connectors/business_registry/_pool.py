"""A few ``httpx.AsyncClient``s used in turn.

One client shared by many concurrent tasks is slow: httpcore scans every pooled connection for each
request under one lock (encode/httpx#3215, encode/httpcore#1035), so the cost grows with the
connections in flight. Spreading the load over a few small clients keeps each scan short;
``bench/business_direct.py`` measures the layouts.
"""

from collections.abc import Callable
from itertools import count

import httpx


class ClientPool:
    """``size`` clients from ``factory``, handed out round-robin."""

    def __init__(self, size: int, factory: Callable[[], httpx.AsyncClient]) -> None:
        if size < 1:
            raise ValueError("a client pool needs at least one client")
        self._clients = tuple(factory() for _ in range(size))
        self._turn = count()

    def next(self) -> httpx.AsyncClient:
        """The client whose turn it is."""
        return self._clients[next(self._turn) % len(self._clients)]

    def __len__(self) -> int:
        return len(self._clients)

    async def aclose(self) -> None:
        """Close every client."""
        for client in self._clients:
            await client.aclose()


__all__ = ["ClientPool"]
