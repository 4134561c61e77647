"""The business registry services through the real gateway: REST r1 and the SOAP face, both brokers.

The sandbox is the session's real uvicorn server (``conftest.sandbox``); the hub is a real gateway
with its workers (``tests.hub.harness.running_hub``), or, for the shared rate limit, a gateway and
two ``lgsp worker`` processes on RabbitMQ. Services and connector settings come from
``connectors.business_registry.hub_config``, as in the demo and the benchmark.
"""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from bisect import bisect_left
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import zeep.exceptions

from connectors.business_registry import Enterprise, EnterpriseSearchResult
from connectors.business_registry.connector import STALE_WARNING
from connectors.business_registry.demo import bad_check_digit
from connectors.business_registry.hub_config import (
    CONNECTOR_INSTANCE,
    LOOKUP_SERVICE,
    SEARCH_SERVICE,
    business_fragment,
)
from tests.conftest import unique_namespace
from tests.connectors.business_registry.conftest import Sandbox
from tests.hub.harness import CLIENT, KEY, RunningHub, running_hub
from tests.soap_face.support import zeep_client

UNKNOWN_CODE = "0100233488"  # a valid tax code the synthetic registry does not hold
FAULT_NS = "{urn:lgsp-hub:soap-face:fault}"
# Short timeouts keep failing tests short; one attempt, so the registry's counters count calls.
FAST = {"connect_timeout": 1.0, "read_timeout": 2.0, "total_timeout": 3.0, "rate_limit_timeout": 2.0}


def hub_config(
    sandbox: Sandbox,
    *,
    broker_url: str,
    store_url: str,
    shared: dict[str, str] | None = None,
    instance: str = CONNECTOR_INSTANCE,
    **settings: Any,
) -> dict[str, Any]:
    """A hub whose only services are the business registry's, granted to the test client."""
    fragment = business_fragment(sandbox.url, instance=instance, retry={"attempts": 1}, **(FAST | settings))
    config: dict[str, Any] = {
        "broker": {"url": broker_url, "namespace": unique_namespace()},
        "store": {"url": store_url},
        "gateway": {"request_timeout": 8.0},
        "members": {CLIENT: {"api_keys": [KEY]}},
        "connectors": fragment["connectors"],
        "services": fragment["services"],
        "acl": [{"client": CLIENT, "services": fragment["allowed"]}],
    }
    if shared:
        config["shared"] = shared
    return config


async def lookup(running: RunningHub, code: str, **headers: str) -> httpx.Response:
    return await running.http.post(
        f"/r1/{LOOKUP_SERVICE}", json={"enterprise_code": code}, headers=running.headers(**headers)
    )


def store(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/hub.sqlite3"


@pytest.fixture
def redis_instance(redis_url: str) -> Iterator[str]:
    """A connector instance name of its own (cache keys hang from it); its Redis entries go afterwards."""
    instance = f"business-{uuid.uuid4().hex[:10]}"
    yield instance
    with redis.Redis.from_url(redis_url) as client:
        keys = list(client.scan_iter(match=f"*business_registry:{instance}:*"))
        if keys:
            client.delete(*keys)


# -- the main path, on both brokers --------------------------------------------------------------


async def test_lookup_through_hub_returns_the_enterprise(
    sandbox: Sandbox, broker_url: str, tmp_path: Path
) -> None:
    # Given a hub on this broker in front of the registry, and an enterprise of the registry
    record = sandbox.registry.enterprise(0)
    async with running_hub(hub_config(sandbox, broker_url=broker_url, store_url=store(tmp_path))) as running:
        # When the client looks it up through REST r1
        response = await lookup(running, record.code)
    # Then it gets the canonical enterprise, fetched from the registry once
    assert response.status_code == 200, response.text
    enterprise = Enterprise.model_validate_json(response.content)
    assert (enterprise.enterprise_code, enterprise.name, enterprise.status) == (
        record.code,
        record.name,
        record.status,
    )
    assert response.headers["x-cache"] == "MISS"
    assert response.headers["x-road-request-hash"]
    assert sandbox.state.by_outcome[200] == 1


async def test_lookup_branch_code_through_hub_returns_the_branch(
    sandbox: Sandbox, broker_url: str, tmp_path: Path
) -> None:
    # Given an enterprise with branches
    parent = next(e for e in sandbox.registry if e.branches)
    branch = parent.branches[-1]
    async with running_hub(hub_config(sandbox, broker_url=broker_url, store_url=store(tmp_path))) as running:
        # When its last branch is looked up by its 10-3 code (as a query string this time)
        response = await running.http.get(
            f"/r1/{LOOKUP_SERVICE}", params={"enterprise_code": branch.code}, headers=running.headers()
        )
    # Then the branch comes back, pointing at its enterprise
    assert response.status_code == 200, response.text
    found = Enterprise.model_validate_json(response.content)
    assert (found.enterprise_code, found.parent_enterprise_code, found.name) == (
        branch.code,
        parent.code,
        branch.name,
    )


async def test_lookup_bad_check_digit_through_hub_is_refused_before_leaving_the_hub(
    sandbox: Sandbox, broker_url: str, tmp_path: Path
) -> None:
    # Given an enterprise code whose check digit is wrong
    code = bad_check_digit(sandbox.registry.code_of(1))
    async with running_hub(hub_config(sandbox, broker_url=broker_url, store_url=store(tmp_path))) as running:
        # When it is looked up through the hub
        response = await lookup(running, code)
    # Then the hub refuses it, naming the field, and the registry never heard of it
    assert response.status_code == 400
    assert response.headers["x-road-error"] == "Client.InvalidRequest"
    assert response.json()["detail"]["field"] == "enterprise_code"
    assert sandbox.state.requests == 0


async def test_lookup_unknown_code_through_hub_is_404(
    sandbox: Sandbox, broker_url: str, tmp_path: Path
) -> None:
    # Given a valid tax code the registry does not hold
    assert sandbox.registry.lookup(UNKNOWN_CODE) is None
    async with running_hub(hub_config(sandbox, broker_url=broker_url, store_url=store(tmp_path))) as running:
        # When it is looked up through the hub
        response = await lookup(running, UNKNOWN_CODE)
    # Then the client gets 404 NotFound, once asked of the registry (not retried)
    assert response.status_code == 404
    assert response.headers["x-road-error"] == "Server.ServerProxy.NotFound"
    assert sandbox.state.by_outcome[404] == 1


async def test_search_through_hub_pages_are_disjoint_and_counted(
    sandbox: Sandbox, broker_url: str, tmp_path: Path
) -> None:
    # Given a name many enterprises share
    total, expected = sandbox.registry.search("hoang long", 2, 3)
    async with running_hub(hub_config(sandbox, broker_url=broker_url, store_url=store(tmp_path))) as running:
        # When the client asks for its first two pages of three
        pages = [
            await running.http.post(
                f"/r1/{SEARCH_SERVICE}",
                json={"name": "Hoàng Long", "page": page, "page_size": 3},
                headers=running.headers(),
            )
            for page in (1, 2)
        ]
    # Then both carry the total, and page 2 holds the registry's next three hits
    assert [p.status_code for p in pages] == [200, 200]
    one, two = (EnterpriseSearchResult.model_validate_json(p.content) for p in pages)
    assert one.total == two.total == total > 6
    assert [i.enterprise_code for i in two.items] == [e.code for e in expected]
    assert not {i.enterprise_code for i in one.items} & {i.enterprise_code for i in two.items}


# -- the shared cache ----------------------------------------------------------------------------


@pytest.mark.parametrize("cache", ["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def test_cache_second_lookup_through_hub_is_a_hit(
    sandbox: Sandbox, tmp_path: Path, cache: str, request: pytest.FixtureRequest
) -> None:
    # Given a hub whose shared cache is in memory or on Redis
    shared, instance = None, CONNECTOR_INSTANCE
    if cache == "redis":
        shared = {"cache_url": request.getfixturevalue("redis_url")}
        instance = request.getfixturevalue("redis_instance")
    config = hub_config(
        sandbox, broker_url="embedded://", store_url=store(tmp_path), shared=shared, instance=instance
    )
    code = sandbox.registry.code_of(10)
    async with running_hub(config) as running:
        # When the same enterprise is looked up twice
        first = await lookup(running, code)
        second = await lookup(running, code)
    # Then the first is a miss, the second a hit with the same body, and the registry saw one call
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
    assert second.headers["age"] == "0"
    assert second.headers["cache-control"] == "max-age=3600"
    assert second.content == first.content
    assert sandbox.state.requests == 1


@pytest.mark.redis
async def test_cache_no_cache_from_the_client_bypasses_and_refreshes_through_hub(
    sandbox: Sandbox, tmp_path: Path, redis_url: str, redis_instance: str
) -> None:
    # Given a look-up cached on Redis
    config = hub_config(
        sandbox,
        broker_url="embedded://",
        store_url=store(tmp_path),
        shared={"cache_url": redis_url},
        instance=redis_instance,
    )
    code = sandbox.registry.code_of(11)
    async with running_hub(config) as running:
        await lookup(running, code)
        # When the client sends Cache-Control: no-cache, then asks again normally
        bypassed = await lookup(running, code, **{"Cache-Control": "no-cache"})
        after = await lookup(running, code)
    # Then the first went to the registry (BYPASS), and the refreshed entry serves the next one
    assert bypassed.status_code == 200
    assert bypassed.headers["x-cache"] == "BYPASS"
    assert after.headers["x-cache"] == "HIT"
    assert sandbox.state.requests == 2


@pytest.mark.redis
async def test_cache_stale_if_error_through_hub_serves_the_marked_stale_answer(
    sandbox: Sandbox, tmp_path: Path, redis_url: str, redis_instance: str
) -> None:
    # Given an answer cached on Redis, now past its TTL (0.2 s) but within max-stale
    config = hub_config(
        sandbox,
        broker_url="embedded://",
        store_url=store(tmp_path),
        shared={"cache_url": redis_url},
        instance=redis_instance,
        cache_ttl=0.2,
        cache_max_stale=60,
    )
    code = sandbox.registry.code_of(12)
    async with running_hub(config) as running:
        fresh = await lookup(running, code)
        await asyncio.sleep(0.3)
        # When the registry goes down and the client asks again
        with httpx.Client(base_url=sandbox.url) as control:
            assert control.put("/_sandbox/faults", json={"down": True}).status_code == 200
        stale = await lookup(running, code)
        # And when it insists on a fresh answer
        insisted = await lookup(running, code, **{"Cache-Control": "no-cache"})
    # Then the stale answer is served, marked in its headers; a no-cache request gets the failure
    assert stale.status_code == 200
    assert stale.content == fresh.content
    assert stale.headers["x-cache"] == "STALE"
    assert stale.headers["warning"] == STALE_WARNING
    assert int(stale.headers["age"]) >= 0
    assert insisted.status_code == 502
    assert insisted.headers["x-road-error"] == "Server.ServerProxy.BackendUnavailable"
    assert sandbox.state.by_outcome[503] == 2


# -- 429 from the registry -----------------------------------------------------------------------


async def test_429_short_retry_after_through_hub_is_waited_out(sandbox: Sandbox, tmp_path: Path) -> None:
    # Given a registry whose quota of 2 calls a second is used up
    sandbox.state.rate_limit = 2
    codes = [sandbox.registry.code_of(i) for i in (20, 21, 22)]
    async with running_hub(
        hub_config(sandbox, broker_url="embedded://", store_url=store(tmp_path))
    ) as running:
        for code in codes[:2]:
            assert (await lookup(running, code)).status_code == 200
        # When a third look-up comes at once
        started = time.monotonic()
        response = await lookup(running, codes[2])
    # Then the hub waited out the Retry-After (1 s) and the client got the answer
    assert response.status_code == 200, response.text
    assert 0.9 <= time.monotonic() - started < 3.0
    assert sandbox.state.by_outcome[429] == 1


async def test_429_long_retry_after_through_hub_is_passed_back(sandbox: Sandbox, tmp_path: Path) -> None:
    # Given a registry whose quota is exhausted for an hour (longer than retry_after_max)
    sandbox.state.rate_limit = 1
    sandbox.state.retry_after = 3600
    async with running_hub(
        hub_config(sandbox, broker_url="embedded://", store_url=store(tmp_path))
    ) as running:
        await lookup(running, sandbox.registry.code_of(23))
        # When another look-up comes
        response = await lookup(running, sandbox.registry.code_of(24))
    # Then the client gets the registry's 429, with the Retry-After in the detail
    assert response.status_code == 429
    assert response.headers["x-road-error"] == "Server.ServerProxy.BackendRejected"
    assert response.json()["detail"]["detail"]["retry_after"] == 3600


async def test_429_retry_after_beyond_the_wait_budget_through_hub_fails_fast(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    # Given a registry that asks for 5 s of quiet, longer than the hub may wait (1 s)
    sandbox.state.rate_limit = 1
    sandbox.state.retry_after = 5
    config = hub_config(sandbox, broker_url="embedded://", store_url=store(tmp_path), rate_limit_timeout=1.0)
    async with running_hub(config) as running:
        await lookup(running, sandbox.registry.code_of(25))
        # When two more look-ups come
        started = time.monotonic()
        refused = await lookup(running, sandbox.registry.code_of(26))
        held_back = await lookup(running, sandbox.registry.code_of(27))
    # Then both fail fast as unavailable, and the pause kept the second from reaching the registry
    assert time.monotonic() - started < 1.0
    for response in (refused, held_back):
        assert response.headers["x-road-error"] == "Server.ServerProxy.BackendUnavailable"
        assert response.json()["detail"]["detail"]["reason"] == "rate_limited"
    assert sandbox.state.requests == 2


# -- the quota across worker processes -----------------------------------------------------------

RATE = 10  # the province's quota, calls per second, whatever the number of worker processes
SECONDS = 2.0
WINDOW = 0.9  # one second minus a margin for the jitter between taking a slot and arriving
CALLS = "registry call: GET "  # the connector logs every call a worker makes at INFO


def _densest(arrivals: list[float], width: float) -> int:
    ordered = sorted(arrivals)
    return max((bisect_left(ordered, t + width) - i for i, t in enumerate(ordered)), default=0)


def _calls(log: Path) -> int:
    return log.read_text(errors="replace").count(CALLS)


async def _worker(config_file: Path, logs: Path) -> subprocess.Popen[bytes]:
    """An ``lgsp worker`` process on ``config_file``, started once it says it serves."""
    lgsp = Path(sys.executable).with_name("lgsp")
    out, err = logs.with_suffix(".out"), logs.with_suffix(".err")
    process = subprocess.Popen(
        [str(lgsp), "worker", "-c", str(config_file)],
        stdout=out.open("wb"),
        stderr=err.open("wb"),
        env={**os.environ, "COLUMNS": "200"},
    )
    deadline = time.monotonic() + 40
    while "worker serving" not in out.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"lgsp worker did not start: {err.read_text(errors='replace')[-2000:]}")
        await asyncio.sleep(0.1)
    return process


@pytest.mark.rabbitmq
@pytest.mark.redis
@pytest.mark.slow
async def test_rate_limit_through_hub_holds_across_two_worker_processes(
    sandbox: Sandbox, rabbitmq_url: str, redis_url: str, tmp_path: Path
) -> None:
    # Given one gateway and two `lgsp worker` processes on RabbitMQ, sharing a 10/s quota on Redis
    config = hub_config(
        sandbox,
        broker_url=rabbitmq_url,
        store_url=store(tmp_path),
        shared={"rate_limit_url": f"async+{redis_url}"},
        rate_limit_per_second=RATE,
        rate_limit_timeout=4.0,
        total_timeout=5.0,
    )
    config_file = tmp_path / "lgsp.yaml"
    config_file.write_text(json.dumps(config))  # JSON is YAML
    codes = [sandbox.registry.code_of(i) for i in range(1000, 1200)]  # all distinct: no cache hit
    async with running_hub(config, workers=False) as running:
        workers = await asyncio.gather(*(_worker(config_file, tmp_path / f"w{n}") for n in range(2)))
        logs = [tmp_path / f"w{n}.err" for n in range(2)]
        try:
            # (each worker's first call pays for lazy set-up; then the warm-up slots leave the window)
            warm = await asyncio.gather(*(lookup(running, code) for code in codes[:4]))
            assert [r.status_code for r in warm] == [200] * 4, [r.text for r in warm]
            await asyncio.sleep(1.1)
            before = [_calls(log) for log in logs]
            start_at = time.time()
            stop_at = start_at + SECONDS
            statuses: list[int] = []

            # When eight clients look enterprises up through the one gateway, as fast as they can
            async def client(offset: int) -> None:
                index = offset
                while time.time() < stop_at:
                    statuses.append((await lookup(running, codes[index])).status_code)
                    index += 8

            await asyncio.gather(*(client(4 + k) for k in range(8)))
            await asyncio.sleep(0.3)  # the last log lines
            during = [_calls(log) - b for log, b in zip(logs, before, strict=True)]
        finally:
            for process in workers:
                process.send_signal(signal.SIGTERM)
            for process in workers:
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
    arrivals = [t for t in sandbox.state.served_at if t >= start_at - 0.05]
    # Then every client got its answer, both processes called the registry, each call counted once
    assert set(statuses) == {200}, statuses
    assert all(n > 0 for n in during), during
    assert sum(during) == len(arrivals) == len(statuses)
    # And no window of (almost) a second saw more than the quota at the registry
    assert _densest(arrivals, WINDOW) <= RATE, sorted(round(t - start_at, 3) for t in arrivals)
    # And together the processes got one province's quota, not one each
    assert RATE * SECONDS <= len(arrivals) <= RATE * (SECONDS + 2)


# -- SOAP client → REST backend ------------------------------------------------------------------


async def test_soap_client_calls_both_operations_through_the_generated_wsdl(
    sandbox: Sandbox, broker_url: str, tmp_path: Path
) -> None:
    # Given a hub on this broker and a SOAP-only provincial client (zeep) on each generated WSDL
    parent = next(e for e in sandbox.registry if len(e.branches) > 1)
    branch = parent.branches[1]
    _, expected = sandbox.registry.search("xay dung", 3, 4)
    async with running_hub(hub_config(sandbox, broker_url=broker_url, store_url=store(tmp_path))) as running:
        gateway, headers = running.gateway.url, running.headers()
        lookups = await asyncio.to_thread(zeep_client, f"{gateway}/soap/{LOOKUP_SERVICE}?wsdl", headers)
        searches = await asyncio.to_thread(zeep_client, f"{gateway}/soap/{SEARCH_SERVICE}?wsdl", headers)
        # When it looks a branch up, searches by name (page 3 of 4), and sends a bad check digit
        found = await asyncio.to_thread(lookups.service.EnterpriseLookup, enterprise_code=branch.code)
        page = await asyncio.to_thread(
            searches.service.EnterpriseSearch, name="Xây dựng", page=3, page_size=4
        )
        with pytest.raises(zeep.exceptions.Fault) as refused:
            await asyncio.to_thread(
                lookups.service.EnterpriseLookup, enterprise_code=bad_check_digit(parent.code)
            )
    # Then the REST registry's answers come back as typed XML, and the refusal names the field
    assert (found.enterprise_code, found.parent_enterprise_code, found.name) == (
        branch.code,
        parent.code,
        branch.name,
    )
    assert (page.page, page.page_size) == (3, 4)
    assert [item.enterprise_code for item in page.items] == [e.code for e in expected]
    assert refused.value.detail.findtext(f"{FAULT_NS}type") == "Client.InvalidRequest"
    assert refused.value.detail.findtext(f"{FAULT_NS}field") == "enterprise_code"
    assert sandbox.state.by_endpoint == {"lookup": 1, "search": 1}
