"""A pika channel made awaitable: each RPC resolves a future, and every waiter fails when it closes."""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Generic, Protocol, TypeVar

import pika.exceptions as pe
from pika import spec
from pika.adapters.asyncio_connection import AsyncioConnection
from pika.channel import Channel

from hub.broker._rabbit_connection import LoopConnection
from hub.broker._rabbit_errors import pika_errors, translate
from hub.errors import BrokerConnectionError, BrokerError

log = logging.getLogger(__name__)

CLOSE_TIMEOUT = 5.0

GetResult = tuple[spec.Basic.GetOk, spec.BasicProperties, bytes]


def _resolver(future: "asyncio.Future[Any]") -> Callable[..., None]:
    def resolve(*args: Any) -> None:
        if not future.done():
            future.set_result(args[0] if len(args) == 1 else args)

    return resolve


class AsyncChannel:
    """One pika channel; `call` awaits an RPC, `closed` resolves with the reason when it closes."""

    def __init__(self, raw: Channel) -> None:
        self.raw = raw
        self.loop = asyncio.get_running_loop()
        self.closed: asyncio.Future[BrokerError] = self.loop.create_future()
        self._waiters: set[asyncio.Future[Any]] = set()
        self._close_listeners: list[Callable[[BrokerError], None]] = []
        self._get_lock = asyncio.Lock()
        self._get_waiter: asyncio.Future[Any] | None = None
        raw.add_on_close_callback(self._on_close)

    @classmethod
    async def open(cls, connection: AsyncioConnection) -> "AsyncChannel":
        """Open a channel on `connection`.

        Raises:
            BrokerConnectionError: the connection is down or dropped while opening.
        """
        opened: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        with pika_errors("opening a channel"):
            raw = connection.channel(on_open_callback=_resolver(opened))
        channel = cls(raw)
        try:
            await channel._wait(opened)
        except asyncio.CancelledError:
            channel.close_soon()
            raise
        return channel

    @property
    def is_open(self) -> bool:
        return bool(self.raw.is_open)

    @property
    def number(self) -> int:
        return int(self.raw.channel_number)

    def flush(self) -> None:
        """Write what the connection holds now (see `LoopConnection.flush`)."""
        connection = self.raw.connection
        if isinstance(connection, LoopConnection):
            connection.flush()

    def at_end_of_turn(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` at the end of this loop turn, before the connection writes what it holds."""
        connection = self.raw.connection
        if isinstance(connection, LoopConnection):
            connection.at_end_of_turn(callback)
        else:
            self.loop.call_soon(callback)

    def on_close(self, listener: Callable[[BrokerError], None]) -> None:
        """Call `listener(reason)` once the channel is closed (by us, the broker, or a lost connection)."""
        if self.closed.done():
            listener(self.closed.result())
        else:
            self._close_listeners.append(listener)

    async def call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a pika RPC method that takes `callback=`, and return the reply frame.

        Raises:
            BrokerError: the broker refused it (the channel is then closed).
            BrokerConnectionError: the channel or its connection closed first.
        """
        self._require_open()
        future: asyncio.Future[Any] = self.loop.create_future()
        with pika_errors():
            method(*args, callback=_resolver(future), **kwargs)
        return await self._wait(future)

    async def get(self, queue: str) -> GetResult | None:
        """basic.get with manual ack: (method, properties, body), or None when the queue is empty."""
        async with self._get_lock:
            self._require_open()
            future: asyncio.Future[Any] = self.loop.create_future()
            if self._get_waiter is None:
                self.raw.add_callback(self._on_get_empty, [spec.Basic.GetEmpty], one_shot=False)
            self._get_waiter = future
            with pika_errors():
                self.raw.basic_get(queue, _resolver(future), auto_ack=False)
            try:
                result = await self._wait(future)
            except asyncio.CancelledError:
                # A GetOk may still arrive for the abandoned get: closing requeues it.
                self.close_soon()
                raise
            return None if result is None else (result[1], result[2], result[3])

    def _on_get_empty(self, _frame: Any) -> None:
        if self._get_waiter is not None and not self._get_waiter.done():
            self._get_waiter.set_result(None)

    async def close(self) -> None:
        """Close the channel (its unacked deliveries go back to their queues); never raises."""
        self.close_soon()
        if not self.closed.done():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await asyncio.shield(self.closed)

    def close_soon(self) -> None:
        if self.raw.is_open or self.raw.is_opening:
            with contextlib.suppress(pe.AMQPError):
                self.raw.close()

    def _require_open(self) -> None:
        if self.closed.done():
            raise BrokerConnectionError(f"channel {self.number} is closed") from self.closed.result()
        if not self.raw.is_open:
            raise BrokerConnectionError(f"channel {self.number} is not open")

    async def _wait(self, future: "asyncio.Future[Any]") -> Any:
        self._waiters.add(future)
        try:
            return await future
        finally:
            self._waiters.discard(future)

    def _on_close(self, _raw: Channel, reason: BaseException) -> None:
        error = translate(reason, f"channel {self.number}")
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(error)
        self._waiters.clear()
        if not self.closed.done():
            self.closed.set_result(error)
        for listener in self._close_listeners:
            try:
                listener(error)
            except Exception:
                log.exception("close listener of channel %s failed", self.number)
        self._close_listeners.clear()


class _Openable(Protocol):
    @property
    def is_open(self) -> bool: ...


T = TypeVar("T", bound=_Openable)


class ChannelSlot(Generic[T]):
    """A channel opened on demand and re-opened once closed."""

    def __init__(self, opener: Callable[[AsyncioConnection], Awaitable[T]]) -> None:
        self._opener = opener
        self._lock = asyncio.Lock()
        self.value: T | None = None

    async def get(self, connection: AsyncioConnection) -> T:
        value = self.value
        if value is not None and value.is_open:
            return value
        async with self._lock:
            if self.value is None or not self.value.is_open:
                self.value = await self._opener(connection)
            return self.value
