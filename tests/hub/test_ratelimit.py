"""One contract suite over the RateLimiter storages: memory (embedded) and Redis (shared)."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from hub.errors import ConfigError
from hub.ratelimit import Rate, RateLimiter, RateLimitStoreError, RateLimitTimeout


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[RateLimiter]:
    uri = "async+memory://" if request.param == "memory" else "async+" + request.getfixturevalue("redis_url")
    limiter = RateLimiter(uri, key_prefix=f"lgsp-test-rl-{uuid.uuid4().hex}")
    try:
        yield limiter
    finally:
        await limiter.reset()
        await limiter.close()


async def test_ratelimit_admits_the_burst_without_waiting(limiter: RateLimiter) -> None:
    # Given a key limited to 5 per second
    limiter.register("k", Rate(5))
    # When 5 calls acquire at once, Then none waits
    waits = [await limiter.acquire("k", timeout=1) for _ in range(5)]
    assert max(waits) < 0.2


async def test_ratelimit_waits_for_the_next_window(limiter: RateLimiter) -> None:
    # Given a key whose 3-per-second budget is spent
    limiter.register("k", Rate(3))
    for _ in range(3):
        await limiter.acquire("k", timeout=1)
    # When one more call acquires with time to wait
    waited = await limiter.acquire("k", timeout=2)
    # Then it waited for the oldest slot to leave the one-second window
    assert 0.8 <= waited < 1.5


async def test_ratelimit_timeout_shorter_than_wait_raises_at_once(limiter: RateLimiter) -> None:
    # Given a spent budget of 2 per second
    limiter.register("k", Rate(2))
    for _ in range(2):
        await limiter.acquire("k", timeout=1)
    # When a call may wait only 0.1 s
    started = time.monotonic()
    with pytest.raises(RateLimitTimeout) as caught:
        await limiter.acquire("k", timeout=0.1)
    # Then it fails without waiting, saying for which key and how long a slot would take
    assert time.monotonic() - started < 0.1
    assert caught.value.key == "k"
    assert caught.value.timeout == 0.1
    assert 0.1 < caught.value.wait <= 1.0


async def test_ratelimit_keys_are_independent(limiter: RateLimiter) -> None:
    limiter.register("a", Rate(1))
    limiter.register("b", Rate(1))
    await limiter.acquire("a", timeout=0)
    assert await limiter.acquire("b", timeout=0) < 0.1
    with pytest.raises(RateLimitTimeout):
        await limiter.acquire("a", timeout=0)


async def test_ratelimit_unregistered_key_is_unlimited(limiter: RateLimiter) -> None:
    for _ in range(50):
        await limiter.acquire("free", timeout=0)


async def test_ratelimit_pause_holds_the_key_back(limiter: RateLimiter) -> None:
    # Given a key paused for 1 s (a Retry-After)
    await limiter.pause("k", 1)
    assert 0 < await limiter.paused_for("k") <= 1.0
    # When a call may wait 0.2 s, Then it is refused; with 2 s, it passes after the pause
    with pytest.raises(RateLimitTimeout):
        await limiter.acquire("k", timeout=0.2)
    waited = await limiter.acquire("k", timeout=2)
    assert 0.6 <= waited <= 1.6
    assert await limiter.paused_for("k") == 0


async def test_ratelimit_shorter_pause_does_not_shorten_a_longer_one(limiter: RateLimiter) -> None:
    await limiter.pause("k", 3)
    await limiter.pause("k", 1)
    assert await limiter.paused_for("k") > 1.5


async def test_ratelimit_burst_above_rate_is_sustained_at_the_rate(limiter: RateLimiter) -> None:
    # Given 1 per second with bursts of 3
    limiter.register("k", Rate(1, burst=3))
    # When 3 calls come at once, Then all pass; a fourth would exceed the ten-second budget soon
    for _ in range(3):
        assert await limiter.acquire("k", timeout=0) < 0.1
    with pytest.raises(RateLimitTimeout):
        await limiter.acquire("k", timeout=0)


def test_rate_items_describe_burst_and_sustained_windows() -> None:
    assert [(i.amount, i.get_expiry()) for i in Rate(5).items()] == [(5, 1)]
    assert [(i.amount, i.get_expiry()) for i in Rate(2, burst=6).items()] == [(6, 1), (20, 10)]
    assert [(i.amount, i.get_expiry()) for i in Rate(0.5).items()] == [(1, 1), (5, 10)]


@pytest.mark.parametrize("bad", [{"per_second": 0}, {"per_second": 1, "burst": 0}])
def test_rate_invalid_values_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Rate(**bad)  # type: ignore[arg-type]


def test_ratelimiter_unknown_storage_raises_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        RateLimiter("memory://")
    assert caught.value.key == "rate_limit.storage"


async def test_ratelimiter_unreachable_redis_raises_store_error() -> None:
    # Given a Redis URL nobody listens on
    limiter = RateLimiter("async+redis://127.0.0.1:1/0", rates={"k": Rate(5)}, storage_timeout=0.5)
    try:
        # When a slot is asked for, Then the storage failure is a RateLimitStoreError with its cause
        with pytest.raises(RateLimitStoreError) as caught:
            await asyncio.wait_for(limiter.acquire("k", timeout=1), 5)
        assert caught.value.key == "k" and caught.value.__cause__ is not None
    finally:
        await limiter.close()
