"""A lean HTTP/1.1 load client for the benchmarks: POSTs on keep-alive connections, answers parsed by httptools.

The benchmarks run the hub and their load client on the same cores, so every microsecond the client
spends is taken from the hub being measured. This client does the least HTTP/1.1 work a request
needs: the request head is built once (only ``Content-Length`` changes per body) and leaves with the
body in one ``writelines``; each connection carries one request at a time; httptools (llhttp, C)
parses the answers (framed by ``Content-Length`` or chunked, as uvicorn's are). Run it on uvloop.

A connection the server closes is replaced by a new one. A request that a reused keep-alive connection
lost before any byte of its answer arrived (the server closed the idle connection as the request went
out, the race every keep-alive client meets) is sent once more on a new connection: only for servers
where resending is safe, as it is for ``/v1/edocs``, whose document id is the idempotency key. Any
other loss, an answer that does not parse and a request unanswered after ``timeout`` seconds are
recorded in its `Answer`, never dropped.
"""

import asyncio
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httptools


@dataclass(frozen=True, slots=True)
class Answer:
    """What came back for one body: ``status`` 0 and ``error`` set when no complete answer did."""

    sent_at: float  # time.time() as the body was first sent (a second attempt keeps it)
    status: int
    body: bytes
    error: str = ""


class _Lost(Exception):
    """The connection failed before the whole answer arrived; ``answered``: some of it had."""

    def __init__(self, reason: str, answered: bool) -> None:
        super().__init__(reason)
        self.answered = answered


class _Connection(asyncio.Protocol):
    """One keep-alive connection, one request in flight at a time."""

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._answer: asyncio.Future[tuple[int, bytes]] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._body: list[bytes] = []
        self._answered = False  # a byte of the current answer arrived
        self.closed = False
        self.used = False  # it carried a whole exchange: a loss before the next answer may be the race

    # ---- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._answered = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(f"unparsable answer: {exc}")

    def eof_received(self) -> None:
        self.closed = True  # no new request on it; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(f"connection lost: {exc!r}" if exc else "connection closed by the server")

    # ---- httptools callbacks

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        answer, self._answer = self._answer, None
        body = b"".join(self._body)
        self._body.clear()
        self._answered = False
        if self._timer is not None:
            self._timer.cancel()
        if answer is None or answer.done():
            self._fail("an answer to no request")
            return
        self.used = True
        if not self._parser.should_keep_alive():
            self.close()
        answer.set_result((self._parser.get_status_code(), body))

    # ---- the client's side

    def request(self, chunks: Sequence[bytes], timeout: float) -> "asyncio.Future[tuple[int, bytes]]":
        """Write one request; the future gets (status, body) or `_Lost`."""
        assert self._transport is not None and self._answer is None
        loop = asyncio.get_running_loop()
        self._answer = answer = loop.create_future()
        self._timer = loop.call_later(timeout, self._fail, f"no answer within {timeout:g} s")
        self._transport.writelines(chunks)
        return answer

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    def _fail(self, reason: str) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
        answer, self._answer = self._answer, None
        if answer is not None and not answer.done():
            answer.set_exception(_Lost(reason, self._answered))
        if self._transport is not None:
            self._transport.abort()


class _Target:
    """Where the requests go and their head, built once."""

    def __init__(self, url: str, path: str, headers: Mapping[str, str]) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"only http://host[:port] URLs: {url!r}")
        self.host, self.port = parts.hostname, parts.port or 80
        lines = [f"POST {path} HTTP/1.1", f"Host: {parts.netloc}", *(f"{k}: {v}" for k, v in headers.items())]
        if any(c in line for line in lines for c in "\r\n"):
            raise ValueError("a line break in the request line or a header")
        self.head = ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")

    def chunks(self, body: bytes) -> tuple[bytes, bytes, bytes]:
        return self.head, b"%d\r\n\r\n" % len(body), body

    async def connect(self, timeout: float) -> _Connection:
        loop = asyncio.get_running_loop()
        _, connection = await asyncio.wait_for(
            loop.create_connection(_Connection, self.host, self.port), timeout
        )
        return connection


async def _slot(
    target: _Target,
    jobs: Iterator[int],
    bodies: Sequence[bytes],
    answers: list[Answer | None],
    timeout: float,
) -> None:
    connection: _Connection | None = None
    try:
        for index in jobs:
            chunks = target.chunks(bodies[index])
            sent_at = time.time()
            for retry in (False, True):
                if connection is None or connection.closed:
                    try:
                        connection = await target.connect(timeout)
                    except (OSError, TimeoutError) as exc:
                        answers[index] = Answer(sent_at, 0, b"", f"cannot connect: {exc!r}")
                        break
                reused = connection.used
                try:
                    status, body = await connection.request(chunks, timeout)
                except _Lost as lost:
                    if reused and not lost.answered and not retry:
                        continue
                    answers[index] = Answer(sent_at, 0, b"", str(lost))
                    break
                answers[index] = Answer(sent_at, status, body)
                break
    finally:
        if connection is not None:
            connection.close()


async def post_all(
    url: str,
    path: str,
    headers: Mapping[str, str],
    bodies: Sequence[bytes],
    concurrency: int,
    timeout: float = 120.0,
) -> list[Answer]:
    """POST each body to ``url`` + ``path``, ``concurrency`` at a time; one `Answer` per body, in order.

    Raises:
        ValueError: the URL is not ``http://host[:port]``, or a header holds a line break.
    """
    target = _Target(url, path, headers)
    answers: list[Answer | None] = [None] * len(bodies)
    jobs = iter(range(len(bodies)))
    await asyncio.gather(*(_slot(target, jobs, bodies, answers, timeout) for _ in range(concurrency)))
    assert None not in answers, "every body has an answer"
    return cast(list[Answer], answers)
