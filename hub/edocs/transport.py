"""The push seam: POST one delivery to a recipient's endpoint. Real (httpx) and in-memory twins pass
one contract suite (tests/edocs/test_transport.py).

Outcomes: any 2xx is delivered; 408, 425, 429, 5xx, a refused connection or a timeout is retryable;
any other status is permanent (no retry: straight to the DLQ). Redirects are not followed.
"""

import abc
from collections.abc import AsyncIterable, Callable, Mapping
from dataclasses import dataclass, field

import httpx

from hub.edocs.errors import DeliveryFailed

RETRYABLE_STATUSES = frozenset({408, 425, 429})


@dataclass(frozen=True, slots=True)
class PushRequest:
    url: str
    body: AsyncIterable[bytes]
    headers: Mapping[str, str] = field(default_factory=dict)


def classify(status: int, url: str) -> None:
    """Raise for a non-2xx answer, retryable or permanent as the module docstring says.

    Raises:
        DeliveryFailed: the status is not 2xx.
    """
    if 200 <= status < 300:
        return
    permanent = status < 500 and status not in RETRYABLE_STATUSES
    raise DeliveryFailed(f"{url} answered {status}", permanent=permanent, status_code=status)


class PushTransport(abc.ABC):
    """Delivers one push request."""

    @abc.abstractmethod
    async def push(self, request: PushRequest) -> int:
        """POST the request; return the endpoint's 2xx status.

        Raises:
            DeliveryFailed: not delivered; ``permanent`` says whether retrying can help.
        """

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class HttpPushTransport(PushTransport):
    """POSTs over httpx with every timeout on and redirects refused."""

    def __init__(self, *, timeout: float, client: httpx.AsyncClient | None = None) -> None:
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout), follow_redirects=False, limits=httpx.Limits(max_connections=64)
        )

    async def push(self, request: PushRequest) -> int:
        try:
            response = await self._client.post(
                request.url, content=request.body, headers=dict(request.headers)
            )
        except httpx.TimeoutException as exc:
            raise DeliveryFailed(f"{request.url} did not answer in time") from exc
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"{request.url} unreachable: {type(exc).__name__}: {exc}") from exc
        classify(response.status_code, request.url)
        return response.status_code

    async def close(self) -> None:
        await self._client.aclose()


@dataclass
class ReceivedPush:
    url: str
    body: bytes
    headers: dict[str, str]


Responder = Callable[[ReceivedPush], int]


class MemoryPushTransport(PushTransport):
    """In-memory twin: each URL answers with its responder's status (unknown URLs are unreachable);
    every attempt is recorded in ``received``."""

    def __init__(self, responders: Mapping[str, Responder] | None = None) -> None:
        self.responders: dict[str, Responder] = dict(responders or {})
        self.received: list[ReceivedPush] = []

    async def push(self, request: PushRequest) -> int:
        body = b"".join([piece async for piece in request.body])
        received = ReceivedPush(request.url, body, {k.lower(): v for k, v in request.headers.items()})
        self.received.append(received)
        responder = self.responders.get(request.url)
        if responder is None:
            raise DeliveryFailed(f"{request.url} unreachable: no such endpoint")
        status = responder(received)
        classify(status, request.url)
        return status


__all__ = [
    "HttpPushTransport",
    "MemoryPushTransport",
    "PushRequest",
    "PushTransport",
    "ReceivedPush",
    "classify",
]
