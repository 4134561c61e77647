"""pika's AsyncioConnection on the event loop's own transport, at most two writes per loop turn.

pika's asyncio adapter drives the socket itself (`add_reader`/`add_writer`): every write waits for
a writable event on a later loop turn, then `send()`s each buffered frame on its own (a publish is
three: method, header, body), and every read loops over `recv()` in Python until EAGAIN. Its stream
interfaces are a subset of asyncio's protocols and transports by design, so here the connected
socket is handed to `loop.create_connection` instead: uvloop (or asyncio) reads in C and writes
without waiting for a writable event.

Frames are held until the end of the loop turn and written together, in order, except that
`flush()`, called where a caller starts waiting on RabbitMQ (after a publish, for its confirm or
reply; after a worker's ack, which follows its reply), writes what is held at once if nothing was
written yet this turn. A request, or a reply with its ack, thus leaves without waiting for the turn
to end (a wait of ≈0.7 ms each way under load in bench/query_overhead.py), and a busy turn still
makes at most two writes: writing every message at once took ≈8 % more CPU per request there
(more `send()`s, and RabbitMQ's answers arriving in more pieces).
"""

import asyncio
import functools
import socket
import ssl
from collections.abc import Callable, Sequence
from typing import Any, cast

from pika.adapters.asyncio_connection import AsyncioConnection, _AsyncioIOServicesAdapter
from pika.adapters.utils import nbio_interface


class _Protocol(asyncio.Protocol):
    """pika's stream protocol as an asyncio protocol (asyncio also calls pause/resume_writing,
    which pika's lacks: it had no write flow control on its own transport either)."""

    def __init__(self, pika_protocol: nbio_interface.AbstractStreamProtocol) -> None:
        self._pika = pika_protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._pika.connection_made(transport)  # type: ignore[arg-type]  # the same interface

    def data_received(self, data: bytes) -> None:
        self._pika.data_received(data)

    def eof_received(self) -> bool | None:
        return self._pika.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._pika.connection_lost(exc)


class _LoopStreams(_AsyncioIOServicesAdapter):
    """pika's asyncio I/O services, with streams on the loop's transports."""

    def create_streaming_connection(
        self,
        protocol_factory: Callable[[], nbio_interface.AbstractStreamProtocol],
        sock: socket.socket,
        on_done: Callable[[Any], None],
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> nbio_interface.AbstractIOReference:
        async def connect() -> tuple[asyncio.BaseTransport, nbio_interface.AbstractStreamProtocol]:
            pika_protocol = protocol_factory()
            try:
                transport, _ = await self._loop.create_connection(
                    functools.partial(_Protocol, pika_protocol),
                    sock=sock,
                    ssl=ssl_context,
                    server_hostname=server_hostname if ssl_context is not None else None,
                )
            except BaseException:
                sock.close()  # ours since the call, as pika expects
                raise
            return transport, pika_protocol

        return self._schedule_and_wrap_in_io_ref(connect(), on_done)


class LoopConnection(AsyncioConnection):
    """An AsyncioConnection on the loop's transport (see the module docstring)."""

    def __init__(self, *args: Any, custom_ioloop: asyncio.AbstractEventLoop, **kwargs: Any) -> None:
        self._held: list[bytes] = []
        self._before_write: list[Callable[[], None]] = []  # run at the end of the turn, before its write
        self._turn_open = False  # frames are being held until the end of this loop turn
        self._flushed = False  # this turn has already written once
        self._event_loop = custom_ioloop
        super().__init__(*args, custom_ioloop=_LoopStreams(custom_ioloop), **kwargs)

    def flush(self) -> None:
        """Write the frames held so far now, unless this turn already wrote (then at its end)."""
        if self._held and not self._flushed:
            self._flushed = True
            self._write()

    def _output_marshaled_frames(self, marshaled_frames: Sequence[bytes]) -> None:
        for data in marshaled_frames:
            self.bytes_sent += len(data)
        self.frames_sent += len(marshaled_frames)
        self._held.extend(marshaled_frames)
        if not self._turn_open:
            self._turn_open = True
            self._event_loop.call_soon(self._end_turn)

    def at_end_of_turn(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` at the end of this loop turn, just before its frames are written: the frames
        it sends (coalesced acks) leave in the same write."""
        self._before_write.append(callback)
        if not self._turn_open:
            self._turn_open = True
            self._event_loop.call_soon(self._end_turn)

    def _end_turn(self) -> None:
        callbacks, self._before_write = self._before_write, []
        for callback in callbacks:
            callback()
        self._turn_open = self._flushed = False
        self._write()

    def _write(self) -> None:
        held, self._held = self._held, []
        transport = cast("asyncio.WriteTransport | None", self._transport)
        if held and transport is not None and not transport.is_closing():  # else it is being aborted
            transport.write(held[0] if len(held) == 1 else b"".join(held))
