"""Micro-benchmark of the population DB connector without the hub: zeep build/parse and calls.

Starts the sandbox in a child process (uvicorn, 127.0.0.1), then measures in this process:
zeep request builds/s, response parses/s (safe parse + zeep + mapping), and connector calls/s
sequentially and with N in flight. Prints a table.

    python -m bench.population_direct [--seconds 3] [--latency-ms 0] [--in-flight 4]
"""

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable

import httpx
from lxml import etree
from zeep.helpers import serialize_object

from connectors.population_db import PopulationDbConnector, PopulationDbSettings
from connectors.population_db._soap import LIMITS, envelope
from connectors.population_db.data import Population
from connectors.population_db.sandbox import _citizen_element
from hub.connector import ConnectorRequest
from hub.identifiers import ServiceId
from mappings import shipped
from signing import parse_xml

SERVICE = ServiceId.parse("VN/GOV/000.00.00.G06/population/citizen-lookup/v1")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rate(seconds: float, work: Callable[[], object]) -> float:
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(100):
            work()
        count += 100
    return count / (time.perf_counter() - start)


async def _arate(seconds: float, in_flight: int, work: Callable[[], Awaitable[object]]) -> float:
    count, start = 0, time.perf_counter()

    async def worker() -> None:
        nonlocal count
        while time.perf_counter() - start < seconds:
            await work()
            count += 1

    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return count / (time.perf_counter() - start)


def _start_sandbox(port: int, latency_ms: float) -> subprocess.Popen[bytes]:
    code = (
        "import uvicorn; from connectors.population_db.sandbox import create_app; "
        f"uvicorn.run(create_app(latency_ms={latency_ms}, request_id_cache_size=10000), "
        f"host='127.0.0.1', port={port}, log_level='warning', access_log=False)"
    )
    process = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).raise_for_status()
            return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the sandbox did not start within 15 s")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--in-flight", type=int, default=4)
    args = parser.parse_args()

    port = _port()
    process = _start_sandbox(port, args.latency_ms)
    try:
        settings = PopulationDbSettings(
            endpoint=f"http://127.0.0.1:{port}/dancuquocgia",
            username="lgsp-hub",
            secret="sandbox-secret",  # type: ignore[arg-type]
            api_key="sandbox-api-key",  # type: ignore[arg-type]
            x_road_client="VN/GOV/000.00.00.H40/lgsp",
            public_service_code="1.001001",
            officer_id="001096001005",
            unit_code="000.00.00.H40",
            account="lgsp-hub",
        )
        connector = PopulationDbConnector(settings)
        route = connector._routes["citizen-lookup"]
        population = Population()
        citizen = population.citizen(7)
        kwargs = {**connector._meta("bench"), "SoDinhDanh": citizen.personal_id}
        operation = route.binding_operation

        def build() -> bytes:
            return etree.tostring(operation.create(**kwargs).content, encoding="utf-8", xml_declaration=True)

        answer = envelope(_citizen_element(citizen))
        spec = shipped("population_db/c06_to_citizen")

        def parse() -> object:
            result = operation.process_reply(parse_xml(answer, limits=LIMITS))
            return spec.apply({"CongDan": serialize_object(result, dict)})

        ids = [population.personal_id(i) for i in range(0, 100_000, 97)]
        counter = 0

        async def call() -> object:
            nonlocal counter
            counter += 1
            body = json.dumps({"personal_id": ids[counter % len(ids)]}).encode()
            request = ConnectorRequest(
                operation="citizen-lookup",
                service=SERVICE,
                client="VN/GOV/000.00.00.H40/one-stop",
                message_id=str(uuid.uuid4()),
                body=body,
            )
            return await connector.call(request)

        await call()
        rows = [
            ("zeep request build (+ serialize)", _rate(args.seconds, build)),
            ("response parse (safe + zeep + mapping)", _rate(args.seconds, parse)),
            ("connector calls, sequential", await _arate(args.seconds, 1, call)),
            (
                f"connector calls, {args.in_flight} in flight",
                await _arate(args.seconds, args.in_flight, call),
            ),
        ]
        await connector.close()
    finally:
        process.terminate()
        process.wait(timeout=10)
    print(f"{'measure (sandbox latency ' + str(args.latency_ms) + ' ms)':<45} {'per second':>12}")
    for name, value in rows:
        print(f"{name:<45} {value:>12,.0f}")


if __name__ == "__main__":
    asyncio.run(main())
