"""Citizen lookups through the hub vs direct zeep calls to the population DB sandbox, same run.

Regime (a): sandbox latency 20 ms, 4 lookups in flight (what the hub costs a provincial system).
Regime (b): sandbox latency 0 ms, 32 in flight (saturation: the most each path carries).
Rows: "direct" is a zeep AsyncClient (vendored WSDL, the national auth headers, httpx) calling the
sandbox, as a provincial system integrating on its own would; "hub" is canonical JSON over REST r1
to a hub process (gateway + population_db worker) on RabbitMQ or on the embedded broker. The sandbox,
each hub and this load generator are separate processes; the paths take turns in interleaved rounds
against the same sandbox, so a neighbour's burst on a shared machine hits every row alike. The LAST
line is ``RATIO hub/direct <value>`` for RabbitMQ in regime (a).

    python bench/population.py            # full run (about a minute and a half)
    python bench/population.py --quick    # seconds-long smoke run (CI)
"""

import argparse
import asyncio
import itertools
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

# `python bench/population.py` puts bench/ first on the path, where bench/mappings.py would shadow
# the mappings package: keep this script's own folder off the import path.
sys.path[:] = [str(Path(__file__).resolve().parent.parent)] + [
    p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent
]

from bench._common import free_port, process_cpu_seconds, stop, wait_port  # noqa: E402

CLIENT = "VN/GOV/000.00.00.H40/bench"
KEY = "bench-key"
RABBIT = os.environ.get("LGSP_BENCH_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
SEED, SIZE = 20240601, 100_000
SANDBOX_PATH = "/dancuquocgia"


def personal_ids(count: int = 1000) -> list[str]:
    """Ids spread over the sandbox's population (the same seed and size as the sandbox)."""
    from connectors.population_db.data import Population

    population = Population(SEED, SIZE)
    return [population.personal_id(index) for index in range(0, SIZE, SIZE // count)]


# ---- the processes -------------------------------------------------------------------------------


def run_sandbox(port: int, latency_ms: float) -> None:
    import uvicorn

    from connectors.population_db.sandbox import create_app

    app = create_app(seed=SEED, population_size=SIZE, latency_ms=latency_ms, path=SANDBOX_PATH)
    uvicorn.run(
        app, host="127.0.0.1", port=port, log_level="error", access_log=False, loop="uvloop", http="httptools"
    )


def run_hub(port: int, endpoint: str, broker_url: str, store_url: str, namespace: str) -> None:
    import uvloop

    from connectors.population_db.hub_config import population_fragment
    from hub.runtime import Hub
    from hub.serving import AppServer
    from hub.settings import load_settings

    fragment = population_fragment(endpoint, concurrency=64)
    config = {
        "broker": {"url": broker_url, "namespace": namespace, "prefetch": 64},
        "store": {"url": store_url},
        "gateway": {"request_timeout": 30},
        "members": {CLIENT: {"api_keys": [KEY]}},
        "connectors": fragment["connectors"],
        "services": fragment["services"],
        "acl": [{"client": CLIENT, "services": fragment["allowed"]}],
        "log_level": "warning",
    }

    async def main() -> None:
        hub = Hub.create(load_settings(data=config, environ={}))
        await hub.start()
        await hub.start_workers()
        server = await AppServer(hub.gateway_app(), port=port, http="httptools").start()
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        print("READY", flush=True)
        await stop.wait()
        await server.stop()
        await hub.stop(timeout=5)

    uvloop.run(main())


_LOGS: dict[int, Any] = {}


def spawn(*args: str) -> subprocess.Popen[bytes]:
    # stderr goes to a file: a pipe nobody reads during the run would fill and stall the child.
    log = tempfile.TemporaryFile()  # noqa: SIM115 - open for as long as the child runs
    process = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, stderr=log)
    _LOGS[process.pid] = log
    return process


def stderr_of(process: subprocess.Popen[bytes]) -> str:
    log = _LOGS[process.pid]
    log.seek(0)
    return str(log.read().decode(errors="replace"))[-2000:]


# ---- the load ------------------------------------------------------------------------------------


class Sample:
    """Latencies and errors of one path, gathered over several interleaved rounds."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors = 0
        self.elapsed = 0.0
        self.cpu = 0.0

    def row(self) -> dict[str, float]:
        latencies = sorted(self.latencies)
        return {
            "rps": len(latencies) / self.elapsed,
            "p50": statistics.median(latencies) * 1000,
            "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
            "errors": self.errors,
            "n": len(latencies),
            "cpu_ms": self.cpu / len(latencies) * 1000 if latencies else float("nan"),
        }


async def closed_loop(
    call: Callable[[str], Awaitable[bool]], ids: list[str], in_flight: int, seconds: float, sample: Sample
) -> None:
    """`in_flight` tasks calling back to back for `seconds`; each call looks up the next id."""
    deadline = time.perf_counter() + seconds
    counter = 0

    async def worker() -> None:
        nonlocal counter
        while time.perf_counter() < deadline:
            counter += 1
            begin = time.perf_counter()
            if not await call(ids[counter % len(ids)]):
                sample.errors += 1
            sample.latencies.append(time.perf_counter() - begin)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    sample.elapsed += time.perf_counter() - start


def http_pool(in_flight: int) -> list[Any]:
    """A few httpx clients used round-robin, for both paths alike: one client shared by many tasks
    rescans its whole pool per request (hub/http.py), and neither path should pay for that."""
    import httpx

    return [
        httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=4), trust_env=False)
        for _ in range(max(1, in_flight // 4))
    ]


def direct_caller(endpoint: str, pool: list[Any]) -> Callable[[str], Awaitable[bool]]:
    """A zeep AsyncClient on the vendored WSDL, signing each call with the national auth headers."""
    import zeep
    from zeep.proxy import AsyncServiceProxy
    from zeep.transports import AsyncTransport

    from connectors.population_db._soap import WSDL_PATH, signature
    from connectors.population_db.sandbox import SandboxOptions

    options = SandboxOptions()
    user, secret = next(iter(options.users.items()))
    clients = itertools.cycle(pool)

    class SignedTransport(AsyncTransport):  # type: ignore[misc]
        async def post(self, address: str, message: bytes, headers: dict[str, str]) -> Any:
            timestamp = int(time.time() * 1000)
            signed = {
                **headers,
                "Timestamp": str(timestamp),
                "ApiKey": options.api_keys[0],
                "X-Road-Client": "VN/GOV/000.00.00.H40/lgsp",
                "Authorization": signature(address, user, timestamp, secret),
            }
            return await next(clients).post(address, content=message, headers=signed)

    client = zeep.AsyncClient(str(WSDL_PATH), transport=SignedTransport(client=pool[0]))
    binding = client.wsdl.bindings["{http://dancuquocgia.bca}DanCuQuocGiaBinding"]
    service = AsyncServiceProxy(client, binding, address=endpoint)
    meta = {
        "MaDVC": "1.001001",
        "MaTichHop": "037",
        "MaCanBo": "001096001005",
        "MaDonVi": "000.00.00.H40",
        "TaiKhoan": user,
    }

    async def call(personal_id: str) -> bool:
        try:
            answer = await service.TraCuuThongTinCongDan(
                MaYeuCau=uuid.uuid4().hex, SoDinhDanh=personal_id, **meta
            )
        except zeep.exceptions.Error as exc:
            print(f"direct call failed: {exc!r}", file=sys.stderr)
            return False
        return bool(answer.SoDinhDanh == personal_id)

    return call


def hub_caller(url: str, pool: list[Any]) -> Callable[[str], Awaitable[bool]]:
    """Canonical JSON lookups over REST r1."""
    headers = {"X-Road-Client": CLIENT, "X-Api-Key": KEY}
    clients = itertools.cycle(pool)

    async def call(personal_id: str) -> bool:
        response = await next(clients).post(url, json={"personal_id": personal_id}, headers=headers)
        if response.status_code != 200:
            print(f"hub answered {response.status_code}: {response.text[:300]}", file=sys.stderr)
            return False
        return bool(response.json()["personal_id"] == personal_id)

    return call


def cpu_seconds(pid: int | None) -> float:
    """CPU time (user + system) of a process so far: this one when `pid` is None (Linux /proc)."""
    if pid is None:
        return time.process_time()
    return process_cpu_seconds(pid)


async def interleaved(
    callers: dict[str, tuple[Callable[[str], Awaitable[bool]], int | None]],
    in_flight: int,
    seconds: float,
    rounds: int,
) -> dict[str, Sample]:
    """Each path in turn, `rounds` times, so a neighbour's burst on the shared machine hits all alike.

    `callers` maps a path to its call and the process whose CPU time it costs (None: this one).
    """
    ids = personal_ids()
    samples = {name: Sample() for name in callers}
    for call, _ in callers.values():
        await closed_loop(call, ids, in_flight, min(1.0, seconds / rounds), Sample())  # warm-up
    for _ in range(rounds):
        for name, (call, pid) in callers.items():
            before = cpu_seconds(pid)
            await closed_loop(call, ids, in_flight, seconds / rounds, samples[name])
            samples[name].cpu += cpu_seconds(pid) - before
    return samples


# ---- the run -------------------------------------------------------------------------------------


def start_hub(endpoint: str, broker: str, workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    broker_url = RABBIT if broker == "rabbitmq" else "embedded://"
    namespace = f"bench{os.getpid()}{broker[0]}"
    hub = spawn(
        "hub", str(port), endpoint, broker_url, f"sqlite+aiosqlite:///{workdir}/{broker}.db", namespace
    )
    assert hub.stdout is not None
    line = hub.stdout.readline()
    if not line.startswith(b"READY"):
        stop(hub)
        raise RuntimeError(f"the {broker} hub did not start: {line!r} {stderr_of(hub)}")
    return hub, port


def measure(
    regime: str, latency_ms: float, in_flight: int, seconds: float, rounds: int, brokers: list[str]
) -> list[dict[str, Any]]:
    """One sandbox, one hub process per broker, every path measured in interleaved rounds."""
    from connectors.population_db.hub_config import LOOKUP_SERVICE

    sandbox_port = free_port()
    sandbox = spawn("sandbox", str(sandbox_port), str(latency_ms))
    workdir = Path(tempfile.mkdtemp(prefix="lgsp-bench-"))
    hubs: list[subprocess.Popen[bytes]] = []
    try:
        wait_port(sandbox_port)
        endpoint = f"http://127.0.0.1:{sandbox_port}{SANDBOX_PATH}"
        urls = {}
        for broker in brokers:
            hub, port = start_hub(endpoint, broker, workdir)
            hubs.append(hub)
            urls[f"hub ({broker})"] = (f"http://127.0.0.1:{port}/r1/{LOOKUP_SERVICE}", hub.pid)

        async def run() -> dict[str, Sample]:
            pools = [http_pool(in_flight) for _ in range(len(urls) + 1)]
            callers: dict[str, tuple[Callable[[str], Awaitable[bool]], int | None]] = {
                "direct (zeep)": (direct_caller(endpoint, pools[0]), None)
            }
            for (name, (url, pid)), pool in zip(urls.items(), pools[1:], strict=True):
                callers[name] = (hub_caller(url, pool), pid)
            try:
                return await interleaved(callers, in_flight, seconds, rounds)
            finally:
                for pool in pools:
                    for http in pool:
                        await http.aclose()

        samples = asyncio.run(run())
    finally:
        for hub in hubs:
            stop(hub)
        stop(sandbox)
        shutil.rmtree(workdir, ignore_errors=True)
    return [{"regime": regime, "path": name, **sample.row()} for name, sample in samples.items()]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="seconds-long smoke run")
    parser.add_argument("--seconds", type=float, default=12.0, help="measured seconds per row")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds the seconds are split into")
    parser.add_argument("--no-rabbitmq", action="store_true", help="embedded broker only")
    args = parser.parse_args()
    seconds, rounds = (1.0, 1) if args.quick else (args.seconds, args.rounds)
    brokers = ["embedded"] if args.no_rabbitmq else ["rabbitmq", "embedded"]
    rows = measure("a: 20 ms, 4 in flight", 20, 4, seconds, rounds, brokers)
    rows += measure("b: 0 ms, 32 in flight", 0, 32, seconds, rounds, brokers)
    print(
        f"{'regime':<24} {'path':<18} {'lookups/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'CPU ms/lookup':>14}"
    )
    for row in rows:
        print(
            f"{row['regime']:<24} {row['path']:<18} {row['rps']:>10.0f} {row['p50']:>8.2f} {row['p99']:>8.2f} "
            f"{row['errors']:>7.0f} {row['cpu_ms']:>14.2f}"
        )
    print("CPU ms/lookup: direct = the zeep client's process; hub = the hub process (RabbitMQ's not counted)")
    by = {(row["regime"][0], row["path"]): row for row in rows}
    for regime in ("a", "b"):
        direct = by[(regime, "direct (zeep)")]
        for broker in brokers:
            hub = by[(regime, f"hub ({broker})")]
            print(
                f"regime {regime} {broker}: lookups/s hub/direct {hub['rps'] / direct['rps']:.3f}, "
                f"added p50 {hub['p50'] - direct['p50']:.2f} ms, added p99 {hub['p99'] - direct['p99']:.2f} ms"
            )
    ratio = by[("a", f"hub ({brokers[0]})")]["rps"] / by[("a", "direct (zeep)")]["rps"]
    print(json.dumps({"rows": rows}), file=sys.stderr)
    print(f"RATIO hub/direct {ratio:.3f}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "sandbox":
        run_sandbox(int(sys.argv[2]), float(sys.argv[3]))
    elif len(sys.argv) > 1 and sys.argv[1] == "hub":
        run_hub(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6])
    else:
        main()
