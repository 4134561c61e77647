"""The rate limit holds across two worker processes sharing Redis, counted where it matters: at the sandbox."""

import json
import subprocess
import sys
import time
import uuid
from bisect import bisect_left

import pytest

from hub.ratelimit import RateLimiter
from tests.connectors.business_registry.conftest import Sandbox, connector_settings

RATE = 10  # calls per second for the whole province, whatever the number of workers
SECONDS = 2.0
WINDOW = 0.9  # one second minus a margin for the jitter between acquiring a slot and arriving

WORKER = """
import asyncio, json, sys, time
from connectors.business_registry import BusinessRegistryConnector
from hub.connector import ConnectorContext, ConnectorRequest
from hub.errors import BackendUnavailable
from hub.identifiers import ServiceId
from hub.ratelimit import RateLimiter

settings, storage, prefix, start_at, seconds, codes = json.loads(sys.argv[1])
service = ServiceId.parse("VN/GOV/000.00.00.G22/business/enterprise-lookup/v1")

async def main():
    limiter = RateLimiter(storage, key_prefix=prefix)
    connector = BusinessRegistryConnector.create(settings, ConnectorContext("shared", rate_limiter=limiter))
    counts = {"admitted": 0, "refused": 0}
    # One call before the start, so that lazy set-up (imports, first connection) does not delay
    # the first timed calls between their slot and their arrival.
    await connector.call(ConnectorRequest("enterprise-lookup", service, "c", "m", body=json.dumps(
        {"enterprise_code": codes[0]}).encode()))
    await asyncio.sleep(max(0.0, start_at - time.time()))
    stop = start_at + seconds

    async def task(offset):
        i = offset
        while time.time() < stop:
            body = json.dumps({"enterprise_code": codes[i % len(codes)]}).encode()
            try:
                await connector.call(ConnectorRequest("enterprise-lookup", service, "c", "m", body=body))
                counts["admitted"] += 1
            except BackendUnavailable:
                counts["refused"] += 1
            i += 4

    await asyncio.wait_for(asyncio.gather(*(task(k) for k in range(4))), seconds + 10)
    await connector.close()
    await limiter.close()
    print(json.dumps(counts))

asyncio.run(main())
"""


def _densest(arrivals: list[float], width: float) -> int:
    ordered = sorted(arrivals)
    return max((bisect_left(ordered, t + width) - i for i, t in enumerate(ordered)), default=0)


@pytest.mark.redis
@pytest.mark.slow
async def test_rate_limit_holds_across_two_worker_processes(sandbox: Sandbox, redis_url: str) -> None:
    # Given two worker processes, each with its own connector, sharing one Redis rate limit of 10/s
    storage = "async+" + redis_url
    prefix = f"lgsp-test-rl2-{uuid.uuid4().hex}"
    settings = connector_settings(sandbox.url, rate_limit_per_second=RATE, rate_limit_timeout=3.0)
    codes = [sandbox.registry.code_of(i) for i in range(200, 264)]
    start_at = time.time() + 4.0  # both start hammering together, once imported and warmed up
    argument = json.dumps([settings, storage, prefix, start_at, SECONDS, codes])
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, argument], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    try:
        # When both call the registry as fast as they can for two seconds
        outputs = [w.communicate(timeout=30) for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
        cleanup = RateLimiter(storage, key_prefix=prefix)
        await cleanup.reset()
        await cleanup.close()
    assert [w.returncode for w in workers] == [0, 0], [err.decode()[-2000:] for _, err in outputs]
    counts = [json.loads(out) for out, _ in outputs]
    arrivals = [t for t in sandbox.state.served_at if t >= start_at - 0.05]  # not the warm-up calls
    # Then both were admitted, and no window of (almost) a second saw more than 10 calls at the sandbox
    assert all(c["admitted"] > 0 for c in counts), counts
    assert sum(c["admitted"] for c in counts) <= len(arrivals) <= sum(c["admitted"] for c in counts) + 2
    assert _densest(arrivals, WINDOW) <= RATE, str(sorted(round(t - start_at, 3) for t in arrivals))
    # And together they got one province's quota, not one per process (two would approach 60)
    assert RATE * SECONDS <= len(arrivals) <= RATE * (SECONDS + 2)
