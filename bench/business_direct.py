"""Business registry, direct (no gateway): httpx pool layouts, connector look-ups/s, cache-hit look-ups/s.

Starts the sandbox in its own process (so the client and the server do not share a core), then:

1. raw ``GET /TraCuuThongTinDoanhNghiep`` with N concurrent tasks under four pool layouts: one shared
   ``AsyncClient``; K clients used round-robin; one client per task;
2. ``BusinessRegistryConnector.call`` (mapping, model, rate limiter) with the cache off;
3. the same with every answer a cache hit (memory, and Redis when it is up).

Usage: python bench/business_direct.py [--seconds 2] [--rounds 3] [--concurrency 32] [--latency-ms 0]
Each case runs in interleaved rounds (the machine is shared); the table shows median, min and max.
The last line is ``RATIO cache-hit/direct <value>``.
"""

import argparse
import asyncio
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable

import httpx
import redis.asyncio as redis

# `python bench/business_direct.py` puts bench/ first on sys.path, where bench/mappings.py would
# shadow the mappings package: drop it.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

from connectors.business_registry import BusinessRegistryConnector
from connectors.business_registry.data import Registry
from connectors.business_registry.sandbox import SANDBOX_CREDENTIALS, encode_credentials
from hub.cache import Cache, CacheError, MemoryCache, RedisCache
from hub.connector import ConnectorContext, ConnectorRequest
from hub.identifiers import ServiceId

SEED, SIZE, CODES = 7, 50_000, 512
SERVICE = ServiceId.parse("VN/GOV/000.00.00.G22/business/enterprise-lookup/v1")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_sandbox(port: int, latency_ms: float) -> subprocess.Popen[bytes]:
    code = (
        "import uvicorn\n"
        "from connectors.business_registry.sandbox import create_app\n"
        f"app = create_app(seed={SEED}, size={SIZE}, latency_ms={latency_ms})\n"
        f"uvicorn.run(app, host='127.0.0.1', port={port}, log_level='warning', access_log=False)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the sandbox did not start within 30 s")


async def _run(
    seconds: float, tasks: int, one: Callable[[int, str], Awaitable[None]], codes: list[str]
) -> float:
    """Calls per second of ``tasks`` concurrent loops of ``one(task, code)`` for ``seconds``."""
    done = 0
    stop = time.monotonic() + seconds

    async def loop(task: int) -> None:
        nonlocal done
        for code in itertools.cycle(codes[task::tasks] or codes):
            if time.monotonic() >= stop:
                return
            await one(task, code)
            done += 1

    started = time.monotonic()
    await asyncio.gather(*(loop(t) for t in range(tasks)))
    return done / (time.monotonic() - started)


def _client(base: str, connections: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"Authorization": encode_credentials(SANDBOX_CREDENTIALS), "Accept": "application/json"}
    return httpx.AsyncClient(base_url=base, limits=limits, headers=headers, timeout=10)


def _layout_call(
    base: str, label: str, count: int, tasks: int
) -> tuple[str, Callable[[int, str], Awaitable[None]], Callable[[], Awaitable[None]]]:
    clients = [_client(base, max(1, 64 // count)) for _ in range(count)]
    turn = itertools.count()

    async def one(task: int, code: str) -> None:
        client = clients[task] if count == tasks else clients[next(turn) % count]
        response = await client.get("/TraCuuThongTinDoanhNghiep", params={"MaSoDoanhNghiep": code})
        response.raise_for_status()

    async def close() -> None:
        for client in clients:
            await client.aclose()

    return f"raw GET, {label}", one, close


def _settings(base: str, pool_clients: int) -> dict[str, object]:
    return {
        "base_url": base,
        "access_key": SANDBOX_CREDENTIALS["AccessKey"],
        "secret_key": SANDBOX_CREDENTIALS["SecretKey"],
        "app_name": SANDBOX_CREDENTIALS["AppName"],
        "partner_code": SANDBOX_CREDENTIALS["PartnerCode"],
        "partner_code_cus": SANDBOX_CREDENTIALS["PartnerCodeCus"],
        "pool_clients": pool_clients,
    }


def _connector_call(
    base: str, label: str, cache: Cache | None, pool_clients: int
) -> tuple[str, Callable[[int, str], Awaitable[None]], Callable[[], Awaitable[None]]]:
    connector = BusinessRegistryConnector.create(
        _settings(base, pool_clients), ConnectorContext(instance=f"bench-{uuid.uuid4().hex[:8]}", cache=cache)
    )

    async def one(task: int, code: str) -> None:
        body = json.dumps({"enterprise_code": code}).encode()
        await connector.call(
            ConnectorRequest(
                "enterprise-lookup", SERVICE, "VN/GOV/000.00.00.H40/one-stop", "bench", body=body
            )
        )

    async def close() -> None:
        await connector.close()
        if cache is not None:
            await cache.close()

    return label, one, close


async def _forget(url: str, prefix: str) -> None:
    """Delete this run's Redis cache keys (no error when Redis is absent)."""
    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
    except redis.RedisError:
        pass
    finally:
        await client.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument(
        "--redis-url", default=os.environ.get("LGSP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    args = parser.parse_args()
    registry = Registry(SEED, SIZE)
    codes = [registry.code_of(i) for i in range(0, SIZE, SIZE // CODES)][:CODES]
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    tasks = args.concurrency
    sandbox = _start_sandbox(port, args.latency_ms)
    cases = [
        _layout_call(base, "one shared client", 1, tasks),
        _layout_call(base, "4 clients round-robin", 4, tasks),
        _layout_call(base, "8 clients round-robin", 8, tasks),
        _layout_call(base, f"one client per task ({tasks})", tasks, tasks),
        _connector_call(base, "connector, no cache, one shared client", None, 1),
        _connector_call(base, "connector, no cache, 8 clients (default)", None, 8),
        _connector_call(base, "connector, cache hits (memory)", MemoryCache(), 8),
    ]
    prefix = f"bench-{uuid.uuid4().hex}:"
    redis_cache = RedisCache.from_url(args.redis_url, prefix=prefix)
    try:
        await redis_cache.get("probe")
        cases.append(_connector_call(base, "connector, cache hits (Redis)", redis_cache, 8))
    except CacheError:
        await redis_cache.close()
    rates: dict[str, list[float]] = {label: [] for label, _, _ in cases}
    try:
        for _, one, _ in cases:  # warm connections, the sandbox's record cache and the hub caches
            await _run(0.5, tasks, one, codes)
        for _ in range(args.rounds):  # interleaved rounds: the machine is shared, its load drifts
            for label, one, _ in cases:
                rates[label].append(await _run(args.seconds, tasks, one, codes))
    finally:
        for _, _, close in cases:
            await close()
        sandbox.terminate()
        sandbox.wait(10)
        await _forget(args.redis_url, prefix)
    rows = [(label, statistics.median(values), min(values), max(values)) for label, values in rates.items()]
    direct = rates["connector, no cache, 8 clients (default)"]
    hit = rates["connector, cache hits (memory)"]
    print(f"\nbusiness registry direct: {args.concurrency} in flight, sandbox latency {args.latency_ms:g} ms")
    print(f"{'layout / path':<46} {'median/s':>9} {'min':>8} {'max':>8}")
    for label, median, low, high in rows:
        print(f"{label:<46} {median:>9.0f} {low:>8.0f} {high:>8.0f}")
    print(f"RATIO cache-hit/direct {statistics.median(hit) / statistics.median(direct):.2f}")


if __name__ == "__main__":
    asyncio.run(main())
