"""A response cache shared by every worker: a small seam, on Redis in production, in memory when embedded.

An entry is bytes plus the moment it was stored, so the caller decides what is fresh and what is
stale (a connector keeps entries for ``ttl + max_stale`` and serves the stale ones only when the
national system is down). Store failures raise ``CacheError``; callers carry on without the cache.

    HubError
    └── CacheError      the cache store failed (Redis down, timeout); the cause is chained
"""

import abc
import struct
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis.asyncio as redis
from redis.exceptions import RedisError

from hub.errors import HubError

Clock = Callable[[], float]
_STAMP = struct.Struct(">d")


class CacheError(HubError):
    """The cache store failed; the operation did not happen."""


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """A cached value and when it was stored (seconds since the epoch)."""

    value: bytes
    stored_at: float

    def age(self, now: float | None = None) -> float:
        """Seconds since the entry was stored (never negative)."""
        return max(0.0, (time.time() if now is None else now) - self.stored_at)


class Cache(abc.ABC):
    """Bytes by key, each kept for a time to live."""

    @abc.abstractmethod
    async def get(self, key: str) -> CacheEntry | None:
        """The entry under ``key``, or None when absent or expired.

        Raises:
            CacheError: the store failed.
        """

    @abc.abstractmethod
    async def set(self, key: str, value: bytes, ttl: float) -> CacheEntry:
        """Store ``value`` under ``key`` for ``ttl`` seconds (> 0); returns the stored entry.

        Raises:
            CacheError: the store failed.
        """

    @abc.abstractmethod
    async def delete(self, key: str) -> None:
        """Forget ``key`` (no error when absent).

        Raises:
            CacheError: the store failed.
        """

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


def _check_ttl(ttl: float) -> None:
    if not ttl > 0:
        raise ValueError(f"cache ttl must be > 0 seconds, not {ttl!r}")


class MemoryCache(Cache):
    """An in-process cache (embedded mode and tests), least recently used entries evicted first."""

    def __init__(self, *, max_entries: int = 10_000, clock: Clock = time.time) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be ≥ 1")
        self._entries: OrderedDict[str, tuple[float, CacheEntry]] = OrderedDict()
        self._max = max_entries
        self._clock = clock

    async def get(self, key: str) -> CacheEntry | None:
        found = self._entries.get(key)
        if found is None:
            return None
        expires_at, entry = found
        if self._clock() >= expires_at:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry

    async def set(self, key: str, value: bytes, ttl: float) -> CacheEntry:
        _check_ttl(ttl)
        now = self._clock()
        entry = CacheEntry(bytes(value), now)
        self._entries[key] = (now + ttl, entry)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
        return entry

    async def delete(self, key: str) -> None:
        self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)


# The one translation table for this module's foreign exceptions.
_FOREIGN: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)


@contextmanager
def _translated(operation: str, key: str) -> Iterator[None]:
    try:
        yield
    except _FOREIGN as exc:
        raise CacheError(f"cache {operation} of {key!r} failed: {type(exc).__name__}: {exc}") from exc


class RedisCache(Cache):
    """A cache on Redis, shared by every process that uses the same URL and prefix.

    Values are stored as an 8-byte timestamp followed by the bytes, with Redis expiring them. An
    injected client must not decode responses (``decode_responses`` off, the default).
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "lgsp:cache:",
        clock: Clock = time.time,
        owns_client: bool = False,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._clock = clock
        self._owns_client = owns_client

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "lgsp:cache:", timeout: float = 1.0) -> "RedisCache":
        """A cache on the Redis at ``url`` (``redis://host:port/db``), every socket operation bounded."""
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        return cls(client, prefix=prefix, owns_client=True)

    async def get(self, key: str) -> CacheEntry | None:
        with _translated("get", key):
            blob = await self._client.get(self._prefix + key)
        if not isinstance(blob, bytes):  # absent (the client never decodes: decode_responses is off)
            return None
        (stored_at,) = _STAMP.unpack_from(blob)
        return CacheEntry(blob[_STAMP.size :], stored_at)

    async def set(self, key: str, value: bytes, ttl: float) -> CacheEntry:
        _check_ttl(ttl)
        entry = CacheEntry(bytes(value), self._clock())
        with _translated("set", key):
            await self._client.set(
                self._prefix + key, _STAMP.pack(entry.stored_at) + entry.value, px=max(1, round(ttl * 1000))
            )
        return entry

    async def delete(self, key: str) -> None:
        with _translated("delete", key):
            await self._client.delete(self._prefix + key)

    async def close(self) -> None:
        if self._owns_client:
            await self._client.aclose()


__all__ = ["Cache", "CacheEntry", "CacheError", "MemoryCache", "RedisCache"]
