"""One contract suite over every Cache: MemoryCache and RedisCache."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis

from hub.cache import Cache, CacheError, MemoryCache, RedisCache


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[Cache]:
    if request.param == "memory":
        yield MemoryCache()
        return
    url: str = request.getfixturevalue("redis_url")
    prefix = f"lgsp-test-cache-{uuid.uuid4().hex}:"
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    store = RedisCache(client, prefix=prefix)
    try:
        yield store
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def test_cache_get_missing_key_is_none(cache: Cache) -> None:
    assert await cache.get("absent") is None


async def test_cache_set_then_get_returns_value_and_stored_at(cache: Cache) -> None:
    # Given a value stored now
    before = time.time()
    stored = await cache.set("k", b"\x00caf\xc3\xa9\xff", ttl=30)
    # When it is read back
    entry = await cache.get("k")
    # Then bytes and storage time survive, and its age is known
    assert entry is not None
    assert entry.value == b"\x00caf\xc3\xa9\xff"
    assert entry.stored_at == pytest.approx(stored.stored_at, abs=1e-6)
    assert before - 0.01 <= entry.stored_at <= time.time() + 0.01
    assert 0 <= entry.age() < 5


async def test_cache_entry_expires_after_ttl(cache: Cache) -> None:
    await cache.set("short", b"v", ttl=0.2)
    assert await cache.get("short") is not None
    await asyncio.sleep(0.35)
    assert await cache.get("short") is None


async def test_cache_set_again_replaces_value_and_stored_at(cache: Cache) -> None:
    first = await cache.set("k", b"one", ttl=30)
    await asyncio.sleep(0.01)
    await cache.set("k", b"two", ttl=30)
    entry = await cache.get("k")
    assert entry is not None and entry.value == b"two" and entry.stored_at > first.stored_at


async def test_cache_delete_forgets_the_key(cache: Cache) -> None:
    await cache.set("k", b"v", ttl=30)
    await cache.delete("k")
    await cache.delete("never-there")
    assert await cache.get("k") is None


async def test_cache_non_positive_ttl_is_refused(cache: Cache) -> None:
    with pytest.raises(ValueError, match="ttl"):
        await cache.set("k", b"v", ttl=0)


async def test_cache_keys_are_independent(cache: Cache) -> None:
    await cache.set("a", b"1", ttl=30)
    await cache.set("b", b"2", ttl=30)
    assert [(await cache.get(k)).value for k in ("a", "b")] == [b"1", b"2"]  # type: ignore[union-attr]


async def test_memory_cache_evicts_least_recently_used() -> None:
    # Given a cache of two entries where "a" was read after "b" was written
    cache = MemoryCache(max_entries=2)
    await cache.set("a", b"1", ttl=30)
    await cache.set("b", b"2", ttl=30)
    await cache.get("a")
    # When a third entry is stored, Then "b" goes
    await cache.set("c", b"3", ttl=30)
    assert await cache.get("b") is None
    assert await cache.get("a") is not None and len(cache) == 2


async def test_redis_cache_unreachable_raises_cache_error_with_cause() -> None:
    # Given a Redis URL nobody listens on
    cache = RedisCache.from_url("redis://127.0.0.1:1/0", timeout=0.5)
    try:
        # When it is read, Then CacheError is raised with the redis error chained
        with pytest.raises(CacheError) as caught:
            await cache.get("k")
        assert caught.value.__cause__ is not None
    finally:
        await cache.close()
