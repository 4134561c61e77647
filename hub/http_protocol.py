"""uvicorn's httptools protocol, writing a response's head and body in one `send()`.

uvicorn writes the status line and headers when the app sends ``http.response.start`` and the body
when it sends ``http.response.body``: two writes, two TCP segments and, on loopback or a busy
machine, two wake-ups of the client for every answer. Here the head is held until the next write
of the same connection (then both go out in one ``writelines``) or the end of the loop turn,
whichever comes first, so a response sent whole leaves in one write and a streamed one is never
held back longer than one loop turn.
"""

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class _HeadHoldingTransport:
    """A transport that holds one write until the next one or the end of the loop turn."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        held = self._held
        if held is None:
            self._held = data
            self._loop.call_soon(self.flush)
        else:
            self._held = None
            self._transport.writelines((held, data))

    def flush(self) -> None:
        """Write what is held now."""
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol on a transport that sends a response's head with its body."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_HeadHoldingTransport(transport, self.loop))  # type: ignore[arg-type]


__all__ = ["CoalescingHttpToolsProtocol"]
