"""Rate limits towards national systems, shared by every worker process (the ``limits`` library).

A key (one per connector instance) gets a ``Rate``: at most ``burst`` calls in any one-second
window, and at most ``per_second × 10`` in any ten-second window when the burst is larger than the
rate. Windows are moving windows in the storage given by URI: ``async+redis://host:port/db`` in
production (every worker shares it), ``async+memory://`` when embedded. ``acquire`` waits for a slot
up to a timeout; ``pause`` holds a key back after a Retry-After (whole seconds in Redis).

    HubError
    └── RateLimitError          the rate limiter could not admit a call
        ├── RateLimitTimeout    the wait would exceed the caller's timeout (carries key, wait, timeout)
        └── RateLimitStoreError the storage failed (the cause is chained)
"""

import asyncio
import math
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import ConfigurationError, StorageError
from limits.storage import storage_from_string

from hub.errors import ConfigError, HubError

_MIN_SLEEP = 0.002
_PAUSE_POLL = 0.05
_SUSTAIN_WINDOW = 10


class RateLimitError(HubError):
    """The rate limiter could not admit a call."""

    def __init__(self, message: str, *, key: str) -> None:
        super().__init__(message)
        self.key = key


class RateLimitTimeout(RateLimitError):
    """A slot would come later than the caller is willing to wait."""

    def __init__(self, message: str, *, key: str, wait: float, timeout: float) -> None:
        super().__init__(message, key=key)
        self.wait = wait
        self.timeout = timeout


class RateLimitStoreError(RateLimitError):
    """The rate-limit storage failed."""


@dataclass(frozen=True, slots=True)
class Rate:
    """Requests per second (sustained) and the burst allowed in any one second (default: the rate)."""

    per_second: float
    burst: int | None = None

    def __post_init__(self) -> None:
        if not self.per_second > 0:
            raise ValueError(f"rate per_second must be > 0, not {self.per_second!r}")
        if self.burst is not None and self.burst < 1:
            raise ValueError(f"rate burst must be ≥ 1, not {self.burst!r}")

    def items(self) -> tuple[RateLimitItem, ...]:
        """The moving-window limits that together enforce this rate."""
        burst = self.burst if self.burst is not None else math.ceil(self.per_second)
        items: list[RateLimitItem] = [RateLimitItemPerSecond(burst, 1)]
        if burst > self.per_second:
            sustained = max(1, math.floor(self.per_second * _SUSTAIN_WINDOW))
            items.append(RateLimitItemPerSecond(sustained, _SUSTAIN_WINDOW))
        return tuple(items)


# The one translation table for this module's foreign exceptions.
_FOREIGN: tuple[type[BaseException], ...] = (StorageError, OSError, TimeoutError)


@contextmanager
def _translated(key: str) -> Iterator[None]:
    try:
        yield
    except _FOREIGN as exc:
        raise RateLimitStoreError(
            f"rate-limit storage failed for {key!r}: {type(exc).__name__}: {exc}", key=key
        ) from exc


class RateLimiter:
    """Admits calls per key at the key's registered rate, in a storage every process can share.

    Example:
        limiter = RateLimiter("async+redis://127.0.0.1:6379/0", rates={"business_registry": Rate(20)})
        await limiter.acquire("business_registry", timeout=2.0)
    """

    def __init__(
        self,
        storage_uri: str = "async+memory://",
        *,
        key_prefix: str = "lgsp-ratelimit",
        rates: Mapping[str, Rate] | None = None,
        storage_timeout: float = 1.0,
    ) -> None:
        """Connect to ``storage_uri``; every storage operation is bounded by ``storage_timeout``.

        Raises:
            ConfigError: the storage URI is not one ``limits`` knows (key ``rate_limit.storage``).
        """
        if not storage_uri.startswith("async+"):
            raise ConfigError(
                f"rate-limit storage {storage_uri!r} must be an async storage URI "
                "(async+redis://host:port/db or async+memory://)",
                key="rate_limit.storage",
            )
        try:
            storage = storage_from_string(
                storage_uri,
                key_prefix=key_prefix,
                wrap_exceptions=True,
                implementation="redispy",
                socket_timeout=storage_timeout,
                socket_connect_timeout=storage_timeout,
            )
        except (ConfigurationError, ValueError) as exc:
            raise ConfigError(f"rate-limit storage {storage_uri!r}: {exc}", key="rate_limit.storage") from exc
        assert isinstance(storage, Storage)
        self._storage: MemoryStorage | RedisStorage | Storage = storage
        self._prefix = key_prefix
        self._strategy = MovingWindowRateLimiter(storage)
        self._rates: dict[str, tuple[RateLimitItem, ...]] = {}
        for key, rate in (rates or {}).items():
            self.register(key, rate)

    def register(self, key: str, rate: Rate) -> None:
        """Limit ``key`` to ``rate`` (replacing any earlier rate for it)."""
        self._rates[key] = rate.items()

    async def acquire(self, key: str, timeout: float) -> float:
        """Take one slot for ``key``, waiting at most ``timeout`` seconds; returns the seconds waited.

        A key without a registered rate only waits out pauses.

        Raises:
            RateLimitTimeout: the next slot (or the end of a pause) is further away than the timeout.
            RateLimitStoreError: the storage failed.
        """
        started = time.monotonic()
        deadline = started + max(0.0, timeout)
        items = self._rates.get(key, ())
        while True:
            wait = await self._paused_for(key)
            if wait <= 0:
                wait = await self._take(key, items)
                if wait <= 0:
                    return time.monotonic() - started
            remaining = deadline - time.monotonic()
            if wait > remaining:
                raise RateLimitTimeout(
                    f"rate limit for {key!r}: the next slot is {wait:.3f}s away, "
                    f"beyond the {timeout:.3f}s this call may wait",
                    key=key,
                    wait=wait,
                    timeout=timeout,
                )
            await asyncio.sleep(max(_MIN_SLEEP, min(wait, remaining)))

    async def pause(self, key: str, seconds: float) -> None:
        """Admit nothing for ``key`` during ``seconds`` (a Retry-After), in every process.

        Raises:
            RateLimitStoreError: the storage failed.
        """
        if seconds <= 0:
            return
        whole = math.ceil(seconds)
        pause_key = self._pause_key(key)
        with _translated(key):
            if await self._storage.get(pause_key) > 0:
                if await self._storage.get_expiry(pause_key) >= time.time() + whole:
                    return
                await self._storage.clear(pause_key)
            await self._storage.incr(pause_key, whole)

    async def paused_for(self, key: str) -> float:
        """Seconds left in the pause of ``key`` (0 when not paused).

        Raises:
            RateLimitStoreError: the storage failed.
        """
        return max(0.0, await self._paused_for(key))

    async def reset(self) -> None:
        """Forget every window and pause under this limiter's key prefix.

        Raises:
            RateLimitStoreError: the storage failed.
        """
        with _translated("*"):
            await self._storage.reset()

    async def close(self) -> None:
        """Release the storage's connections."""
        # limits has no public close: its memory storage runs an expiry task, its Redis bridge a client.
        if isinstance(self._storage, MemoryStorage):
            if self._storage.timer is not None:
                self._storage.timer.cancel()
            return
        client = getattr(getattr(self._storage, "bridge", None), "storage", None)
        if client is not None and hasattr(client, "aclose"):
            with _translated("*"):
                await client.aclose()

    def _pause_key(self, key: str) -> str:
        return f"pause/{key}"

    async def _paused_for(self, key: str) -> float:
        pause_key = self._pause_key(key)
        with _translated(key):
            if await self._storage.get(pause_key) <= 0:
                return 0.0
            left = await self._storage.get_expiry(pause_key) - time.time()
        # Redis reports whole seconds: poll rather than trust a rounded-down zero.
        return max(left, _PAUSE_POLL)

    async def _take(self, key: str, items: tuple[RateLimitItem, ...]) -> float:
        """Hit every item, or return how long until the fullest one frees a slot."""
        with _translated(key):
            if len(items) > 1:
                for item in items:
                    if not await self._strategy.test(item, key):
                        return await self._until_free(item, key)
            for item in items:
                if not await self._strategy.hit(item, key):
                    # Lost a race with another worker: slots already taken stay taken (conservative).
                    return await self._until_free(item, key)
        return 0.0

    async def _until_free(self, item: RateLimitItem, key: str) -> float:
        stats = await self._strategy.get_window_stats(item, key)
        return max(_MIN_SLEEP, stats.reset_time - time.time())


__all__ = ["Rate", "RateLimitError", "RateLimitStoreError", "RateLimitTimeout", "RateLimiter"]
