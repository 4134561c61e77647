"""Business registry look-ups through the hub vs straight to the registry, in the same run.

Regime (a): sandbox latency 20 ms, 8 look-ups in flight (what the hub adds to a real look-up).
Regime (b): sandbox latency 0 ms, 32 in flight, driven by wrk (saturation: the most it carries).
Regime (c): cache hits through the hub, 0 ms, 32 in flight (one code, answered from the hub's cache).

The sandbox, each hub (gateway and workers in one process, configured by ``business_fragment``)
and the load generator are separate processes. Rows: direct (``GET /TraCuuThongTinDoanhNghiep``
with the auth header), the hub on RabbitMQ, on RabbitMQ with the cache and the rate limit on Redis
(as in production; when Redis is up), and on the embedded broker. Loads run in interleaved rounds
(the machine is shared) and the median is shown. Every hub load asks for codes that hub has not
seen, so in (a) and (b) each call misses the cache and reaches the registry; warm-ups use other
codes. The quota is set out of reach (10,000/s), so the rate limiter's cost is measured, not its
waiting. ``CPU ms`` is the hub process's CPU time (user + system) per look-up over the load
(RabbitMQ's and Redis's not counted; nan for direct). The LAST line is ``RATIO hub/direct <value>``
for RabbitMQ in regime (a).

    python bench/business.py                      # full run (about 3 minutes)
    python bench/business.py --quick              # seconds-long smoke run, no wrk, no Redis (CI)
    python bench/business.py --profile out.txt    # also py-spy the RabbitMQ hub in regime (a)
"""

import argparse
import asyncio
import itertools
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# `python bench/business.py` puts bench/ first on sys.path, where bench/mappings.py would shadow
# the mappings package: drop it.
sys.path[:] = [str(Path(__file__).resolve().parent.parent)] + [
    p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent
]

from bench._common import free_port, process_cpu_seconds, run_wrk, stop, wait_port  # noqa: E402
from connectors.business_registry.data import Registry  # noqa: E402
from connectors.business_registry.hub_config import LOOKUP_SERVICE, business_fragment  # noqa: E402
from connectors.business_registry.sandbox import (  # noqa: E402
    LOOKUP_PATH,
    SANDBOX_CREDENTIALS,
    encode_credentials,
)

CLIENT = "VN/GOV/000.00.00.H40/bench"
KEY = "bench-key"
SEED, SIZE = 7, 50_000
WARM_CODES = 5_000  # the last codes of the registry are for warm-ups only
RABBIT = os.environ.get("LGSP_BENCH_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
REDIS = os.environ.get("LGSP_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
# Hub variants: the broker, and the cache and rate-limit stores every worker shares.
VARIANTS: dict[str, tuple[str, dict[str, str]]] = {
    "rabbitmq": (RABBIT, {}),
    "rabbitmq+redis": (RABBIT, {"cache_url": REDIS, "rate_limit_url": f"async+{REDIS}"}),
    "embedded": ("embedded://", {}),
}
DIRECT_HEADERS = {"Authorization": encode_credentials(SANDBOX_CREDENTIALS), "Accept": "application/json"}
HUB_HEADERS = {"X-Road-Client": CLIENT, "X-Api-Key": KEY}


# ---- the processes -------------------------------------------------------------------------------


def run_sandbox(port: int, latency_ms: float) -> None:
    import uvicorn

    from connectors.business_registry.sandbox import create_app

    app = create_app(seed=SEED, size=SIZE, latency_ms=latency_ms, control=False)
    uvicorn.run(
        app, host="127.0.0.1", port=port, log_level="error", access_log=False, loop="uvloop", http="httptools"
    )


def run_hub(port: int, sandbox_url: str, variant: str, store_url: str, namespace: str) -> None:
    import uvloop

    from hub.runtime import Hub
    from hub.serving import AppServer
    from hub.settings import load_settings

    broker_url, shared = VARIANTS[variant]
    fragment = business_fragment(
        sandbox_url, instance=namespace, rate_limit_per_second=10_000, concurrency=64
    )
    config = {
        "broker": {"url": broker_url, "namespace": namespace, "prefetch": 64},
        "store": {"url": store_url},
        "gateway": {"request_timeout": 30},
        "members": {CLIENT: {"api_keys": [KEY]}},
        "connectors": fragment["connectors"],
        "services": fragment["services"],
        "acl": [{"client": CLIENT, "services": fragment["allowed"]}],
        "shared": shared,
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


def spawn(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


# ---- the load generators -------------------------------------------------------------------------


class Target:
    """Where the load goes: a URL prefix the code is appended to, headers, and the codes to cycle."""

    def __init__(self, prefix: str, headers: dict[str, str], codes: list[str]) -> None:
        self.prefix = prefix
        self.headers = headers
        self.codes = codes


async def python_load(target: Target, in_flight: int, seconds: float) -> dict[str, float]:
    """Closed-loop load: ``in_flight`` tasks, each with its own connection, for ``seconds``."""
    import ssl

    import httpx

    latencies: list[float] = []
    errors = 0
    turn = itertools.count()
    tls = ssl.create_default_context()  # one for all: each client would otherwise build its own (~20 ms)
    clients = [httpx.AsyncClient(timeout=30, headers=target.headers, verify=tls) for _ in range(in_flight)]

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            code = target.codes[next(turn) % len(target.codes)]
            begin = time.perf_counter()
            response = await client.get(target.prefix + code)
            if response.status_code != 200:
                errors += 1
            latencies.append(time.perf_counter() - begin)

    start = time.perf_counter()
    deadline = start + seconds
    try:
        await asyncio.gather(*(worker(client) for client in clients))
    finally:
        for client in clients:
            await client.aclose()
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "errors": errors,
        "n": len(latencies),
    }


def wrk_load(target: Target, in_flight: int, seconds: float) -> dict[str, float]:
    """Saturation load from wrk (not the bottleneck, unlike a Python client); codes cycle per thread."""
    threads = 2
    url = re.match(r"(https?://[^/]+)(.*)", target.prefix)
    assert url is not None
    lines = [
        "codes = {" + ",".join(f'"{c}"' for c in target.codes) + "}",
        f'prefix = "{url.group(2)}"',
        *(f'wrk.headers["{k}"] = "{v}"' for k, v in target.headers.items()),
        "local next_id = 0",
        "function setup(thread) thread:set('id', next_id); next_id = next_id + 1 end",
        "local i = 0",
        f"function request() i = i + 1; return wrk.format(nil, prefix .. codes[((i * {threads} + id) % #codes) + 1]) end",
    ]
    return run_wrk(
        "\n".join(lines) + "\n",
        [f"-t{threads}", f"-c{in_flight}", f"-d{max(1, int(seconds))}s", "--timeout", "10s", url.group(1)],
        timeout=seconds + 60,
    )


# ---- the run -------------------------------------------------------------------------------------


class Hubs:
    """One hub process per variant in front of one sandbox; each hub gets fresh codes for every load."""

    def __init__(
        self, sandbox_url: str, variants: list[str], workdir: Path, codes: list[str], loads: int
    ) -> None:
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.urls: dict[str, str] = {}
        size = len(codes) // loads
        self._slices = {v: iter([codes[i * size : (i + 1) * size] for i in range(loads)]) for v in variants}
        for n, variant in enumerate(variants):
            port = free_port()
            store = f"sqlite+aiosqlite:///{workdir}/{n}.db"
            namespace = f"bench{os.getpid()}-{n}"
            self.processes[variant] = spawn("hub", str(port), sandbox_url, variant, store, namespace)
            self.urls[variant] = f"http://127.0.0.1:{port}/r1/{LOOKUP_SERVICE}?enterprise_code="
        for variant, process in self.processes.items():
            assert process.stdout is not None
            line = process.stdout.readline()
            if not line.startswith(b"READY"):
                error = process.stderr.read() if process.stderr else b""
                raise RuntimeError(f"the {variant} hub did not start: {line!r} {error[-2000:]!r}")

    def target(self, variant: str, codes: list[str] | None = None) -> Target:
        """Look-ups of codes this hub has not seen yet (or of ``codes``)."""
        return Target(self.urls[variant], HUB_HEADERS, codes or next(self._slices[variant]))

    def stop(self) -> None:
        for process in self.processes.values():
            stop(process)


def measure(
    regime: str,
    latency_ms: float,
    in_flight: int,
    seconds: float,
    rounds: int,
    variants: list[str],
    use_wrk: bool,
    codes: list[str],
    *,
    cache_hits: bool = False,
    profile: str | None = None,
) -> list[dict[str, Any]]:
    """Rows of one regime: direct and through each hub, in interleaved rounds (the machine is shared)."""
    sandbox_port = free_port()
    sandbox = spawn("sandbox", str(sandbox_port), str(latency_ms))
    workdir = Path(tempfile.mkdtemp(prefix="lgsp-bench-"))
    measured, warm = codes[:-WARM_CODES], codes[-WARM_CODES:]
    hubs: Hubs | None = None
    samples: dict[tuple[str, str], list[dict[str, float]]] = {}

    def load(target: Target, seconds: float = seconds, python: bool = not use_wrk) -> dict[str, float]:
        if python:
            return asyncio.run(python_load(target, in_flight, seconds))
        return wrk_load(target, in_flight, seconds)

    try:
        wait_port(sandbox_port)
        sandbox_url = f"http://127.0.0.1:{sandbox_port}"
        direct = Target(f"{sandbox_url}{LOOKUP_PATH}?MaSoDoanhNghiep=", DIRECT_HEADERS, measured)
        hubs = Hubs(sandbox_url, variants, workdir, measured, rounds)
        load(Target(direct.prefix, DIRECT_HEADERS, warm), min(seconds, 1.0), True)
        for warmed in variants:
            load(hubs.target(warmed, warm), min(seconds, 1.0), True)
        # (regime, path, hub variant or None for direct, fixed codes or None for fresh ones)
        plan: list[tuple[str, str, str | None, list[str] | None]] = [(regime, "direct", None, None)]
        plan += [(regime, f"hub ({v})", v, None) for v in variants]
        if cache_hits:
            plan += [("c: cache hits, 0 ms, 32", f"hub ({v})", v, warm[:1]) for v in variants]
        for round_ in range(rounds):
            for name, path, variant, fixed in plan:
                spy = None
                if profile and round_ == rounds - 1 and path == f"hub ({variants[0]})":
                    spy = py_spy(hubs.processes[variants[0]].pid, seconds, profile)
                target = direct if variant is None else hubs.target(variant, fixed)
                pid = None if variant is None else hubs.processes[variant].pid
                before = process_cpu_seconds(pid) if pid is not None else float("nan")
                run = load(target)
                used = process_cpu_seconds(pid) - before if pid is not None else float("nan")
                run["cpu_ms"] = used / run["n"] * 1000 if run["n"] else float("nan")
                samples.setdefault((name, path), []).append(run)
                if spy is not None:
                    spy.wait(60)
    finally:
        if hubs is not None:
            hubs.stop()
        stop(sandbox)
        shutil.rmtree(workdir, ignore_errors=True)
    return [{"regime": name, "path": path, **_median(runs)} for (name, path), runs in samples.items()]


def py_spy(pid: int, seconds: float, out: str) -> subprocess.Popen[bytes]:
    """py-spy sampling ``pid`` for ``seconds``: only threads holding the GIL, raw (collapsed) stacks."""
    command = ["py-spy", "record", "--gil", "-r", "250", "-f", "raw", "-o", out]
    command += ["-d", str(max(1, int(seconds))), "-p", str(pid)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    """The run with the median throughput (its latencies with it), errors and requests summed."""
    middle = sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]
    return {**middle, "errors": sum(r["errors"] for r in runs), "n": sum(r["n"] for r in runs)}


def _reachable(url: str) -> bool:
    match = re.match(r"\w+://(?:[^@/]*@)?([^:/]+):?(\d+)?", url)
    assert match is not None
    try:
        with socket.create_connection((match.group(1), int(match.group(2) or 6379)), timeout=1.0):
            return True
    except OSError:
        return False


def _forget_cache(namespace_prefix: str) -> None:
    """Delete the Redis cache entries of this run's hubs (kept ``ttl + max_stale`` otherwise)."""
    import redis

    with redis.Redis.from_url(REDIS, socket_timeout=2) as client:
        keys = list(client.scan_iter(match=f"*business_registry:{namespace_prefix}*", count=1000))
        if keys:
            client.delete(*keys)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="seconds-long smoke run, no wrk")
    parser.add_argument("--seconds", type=float, default=5.0, help="per load")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is shown")
    parser.add_argument("--no-rabbitmq", action="store_true", help="embedded broker only")
    parser.add_argument("--profile", metavar="FILE", help="py-spy (raw, --gil) the first hub in regime a")
    args = parser.parse_args()
    seconds, rounds = (1.0, 1) if args.quick else (args.seconds, args.rounds)
    variants = ["embedded"] if args.no_rabbitmq else ["rabbitmq", "embedded"]
    if not args.no_rabbitmq and not args.quick and _reachable(REDIS):
        variants.insert(1, "rabbitmq+redis")
    use_wrk = shutil.which("wrk") is not None and not args.quick
    registry = Registry(SEED, SIZE)
    codes = [registry.code_of(i) for i in range(SIZE)]
    try:
        rows = measure(
            "a: 20 ms, 8 in flight", 20, 8, seconds, rounds, variants, False, codes, profile=args.profile
        )
        rows += measure(
            "b: 0 ms, 32 in flight", 0, 32, seconds, rounds, variants, use_wrk, codes, cache_hits=True
        )
    finally:
        if "rabbitmq+redis" in variants:
            _forget_cache(f"bench{os.getpid()}-")
    print(f"business registry look-ups, median of {rounds} interleaved round(s) of {seconds:g} s")
    print(
        f"{'regime':<26} {'path':<22} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'n':>7} {'CPU ms':>7}"
    )
    for row in rows:
        print(
            f"{row['regime']:<26} {row['path']:<22} {row['rps']:>9.0f} {row['p50']:>8.2f} "
            f"{row['p99']:>8.2f} {row['errors']:>7.0f} {row['n']:>7.0f} {row['cpu_ms']:>7.2f}"
        )
    by = {(r["regime"][0], r["path"]): r for r in rows}
    for regime in ("a", "b"):
        direct = by[(regime, "direct")]
        for variant in variants:
            hub = by[(regime, f"hub ({variant})")]
            print(
                f"regime {regime} {variant}: throughput hub/direct {hub['rps'] / direct['rps']:.3f}, "
                f"added p50 {hub['p50'] - direct['p50']:.2f} ms, added p99 {hub['p99'] - direct['p99']:.2f} ms"
            )
    for variant in variants:
        hits, misses = by[("c", f"hub ({variant})")], by[("b", f"hub ({variant})")]
        print(
            f"cache hits {variant}: {hits['rps'] / misses['rps']:.2f} x the look-ups that reach the registry"
        )
    ratio = by[("a", f"hub ({variants[0]})")]["rps"] / by[("a", "direct")]["rps"]
    print(json.dumps({"rows": rows}), file=sys.stderr)
    print(f"RATIO hub/direct {ratio:.3f}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "sandbox":
        run_sandbox(int(sys.argv[2]), float(sys.argv[3]))
    elif len(sys.argv) > 1 and sys.argv[1] == "hub":
        run_hub(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6])
    else:
        main()
