"""The RabbitMQ connection and its supervisor: connect, notice the loss, reconnect with back-off.

The first connection is made by `start` (one attempt: the caller learns at once that the broker is
unreachable). After that a supervisor task waits for the connection to drop and reconnects, sleeping
between attempts along `reconnect_delays` (then its last value, forever), each delay jittered down
by up to half so a fleet of workers does not reconnect in lockstep. Every new connection is handed
to `on_connected` (re-open channels, re-declare, re-subscribe) before `ready` lets callers use it.
"""

import asyncio
import contextlib
import itertools
import logging
import random
from collections.abc import Awaitable, Callable, Iterator, Sequence

import pika
import pika.exceptions as pe
from pika.adapters.asyncio_connection import AsyncioConnection

from hub.broker._rabbit_connection import LoopConnection
from hub.broker._rabbit_errors import pika_errors, translate
from hub.errors import BrokerConnectionError, BrokerError

log = logging.getLogger(__name__)

OnConnected = Callable[[AsyncioConnection], Awaitable[None]]


class Link:
    """One live connection at a time, replaced after a loss; `ready` waits for it."""

    def __init__(
        self,
        parameters: pika.ConnectionParameters | pika.URLParameters,
        *,
        on_connected: OnConnected,
        reconnect_delays: Sequence[float],
        connect_timeout: float,
        rng: random.Random | None = None,
    ) -> None:
        self._parameters = parameters
        self._on_connected = on_connected
        self._reconnect_delays = tuple(reconnect_delays) or (1.0,)
        self._connect_timeout = connect_timeout
        self._rng = rng or random.Random()
        self._up = asyncio.Event()
        self._closing = False
        self._supervisor: asyncio.Task[None] | None = None
        self.connection: AsyncioConnection | None = None

    @property
    def is_up(self) -> bool:
        connection = self.connection
        return self._up.is_set() and connection is not None and bool(connection.is_open)

    async def start(self) -> None:
        """Connect once and start supervising.

        Raises:
            BrokerConnectionError: RabbitMQ cannot be reached (or refused us).
        """
        connection, lost = await self._open()
        try:
            await self._on_connected(connection)
        except BaseException:
            self._abort(connection)
            raise
        self._mark_up(connection)
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise(lost), name="rabbitmq-link")

    async def ready(self, timeout: float) -> AsyncioConnection:
        """The live connection, waiting up to `timeout` seconds for a reconnect.

        Raises:
            BrokerConnectionError: closed, or still disconnected after `timeout`.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if self._closing or self._supervisor is None:
                raise BrokerConnectionError("the RabbitMQ broker is closed (call connect() first)")
            connection = self.connection
            if self._up.is_set():
                if connection is not None and connection.is_open:
                    return connection
                self._up.clear()
            remaining = deadline - loop.time()
            try:
                if remaining <= 0:
                    raise TimeoutError
                async with asyncio.timeout(remaining):
                    await self._up.wait()
            except TimeoutError:
                raise BrokerConnectionError(
                    f"RabbitMQ is unreachable: still reconnecting after waiting {timeout:g} s"
                ) from None

    async def close(self) -> None:
        """Stop reconnecting and close the connection gracefully (bounded)."""
        self._closing = True
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor
        connection, self.connection = self.connection, None
        self._up.clear()
        if connection is not None and not (connection.is_closed or connection.is_closing):
            closed = asyncio.Event()
            connection.add_on_close_callback(lambda *_: closed.set())
            self._abort(connection)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._connect_timeout):
                    await closed.wait()

    async def _supervise(self, lost: "asyncio.Future[BrokerError]") -> None:
        while True:
            reason = await lost
            self._up.clear()
            self.connection = None
            log.warning("RabbitMQ connection lost (%s); reconnecting", reason)
            lost = await self._reconnect()

    async def _reconnect(self) -> "asyncio.Future[BrokerError]":
        for attempt, delay in enumerate(self._delays(), start=1):
            await asyncio.sleep(delay)
            try:
                connection, lost = await self._open()
            except BrokerConnectionError as exc:
                log.warning("RabbitMQ reconnect attempt %d failed: %s", attempt, exc)
                continue
            try:
                await self._on_connected(connection)
            except asyncio.CancelledError:
                self._abort(connection)
                raise
            except Exception as exc:
                log.warning("RabbitMQ reconnect attempt %d failed while restoring state: %r", attempt, exc)
                self._abort(connection)
                continue
            if lost.done():
                continue
            self._mark_up(connection)
            log.info("reconnected to RabbitMQ after %d attempt(s)", attempt)
            return lost
        raise AssertionError("unreachable: the delays never run out")

    def _delays(self) -> Iterator[float]:
        last = self._reconnect_delays[-1]
        for delay in itertools.chain(self._reconnect_delays, itertools.repeat(last)):
            yield delay * self._rng.uniform(0.5, 1.0)

    def _mark_up(self, connection: AsyncioConnection) -> None:
        self.connection = connection
        self._up.set()

    async def _open(self) -> "tuple[AsyncioConnection, asyncio.Future[BrokerError]]":
        loop = asyncio.get_running_loop()
        opened: asyncio.Future[None] = loop.create_future()
        lost: asyncio.Future[BrokerError] = loop.create_future()

        def on_open(_connection: object) -> None:
            if not opened.done():
                opened.set_result(None)

        def on_open_error(_connection: object, exc: BaseException) -> None:
            if not opened.done():
                opened.set_exception(translate(exc, "connecting to RabbitMQ"))

        def on_close(closed: object, exc: BaseException) -> None:
            if self.connection is closed:
                self._up.clear()
            if not lost.done():
                lost.set_result(translate(exc, "RabbitMQ connection"))

        with pika_errors("connecting to RabbitMQ"):
            connection = LoopConnection(
                self._parameters,
                on_open_callback=on_open,
                on_open_error_callback=on_open_error,
                on_close_callback=on_close,
                custom_ioloop=loop,
            )
        try:
            async with asyncio.timeout(self._connect_timeout + 1.0):
                await opened
        except TimeoutError:
            self._abort(connection)
            raise BrokerConnectionError(
                f"connecting to RabbitMQ: no connection within {self._connect_timeout:g} s"
            ) from None
        except BaseException:
            self._abort(connection)
            raise
        return connection, lost

    @staticmethod
    def _abort(connection: AsyncioConnection) -> None:
        if not (connection.is_closed or connection.is_closing):
            with contextlib.suppress(pe.AMQPError):
                connection.close()
