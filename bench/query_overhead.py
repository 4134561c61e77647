"""What the hub adds to a synchronous query: direct calls vs calls through the hub, same run.

Regime (a): backend latency 20 ms, 8 requests in flight (the latency the hub adds).
Regime (b): backend latency 0 ms, 32 in flight (saturation: the most it carries).
Each row: the same 1 KB POST, the same local backend, direct or through the hub: on RabbitMQ as
`lgsp serve` runs it by default, the gateway process plus one `lgsp worker` process ("2 proc"), on
RabbitMQ with the workers inside the gateway process (`--workers`, "1 proc"), and on the embedded
broker. Every row of a run is driven by the same load
generator: wrk with a fixed connection count (one per request in flight) and its latency
distribution, or without wrk (and in --quick) a keep-alive asyncio client on the hub's own HTTP/1.1
transport. `hub cpu` is the hub's process time over the run, in % of one core (both processes for
"2 proc"). Regime (a) runs `--rounds` (3) interleaved rounds, each path once per round, and reports
each path's median; regime (b) runs once. The LAST line is ``RATIO hub/direct <value>`` for RabbitMQ
in the default layout ("2 proc") in regime (a).

    python bench/query_overhead.py            # full run (about 5 minutes)
    python bench/query_overhead.py --quick    # seconds-long smoke run (CI)
"""

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# bench/mappings.py would shadow the `mappings` package when this file runs as a script.
sys.path[:] = [str(Path(__file__).resolve().parent.parent)] + [
    p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent
]

from bench._common import (  # noqa: E402
    delete_namespace,
    free_port,
    process_cpu_seconds,
    run_wrk,
    stop,
    wait_port,
)

CLIENT = "VN/GOV/000.00.00.H40/bench"
KEY = "bench-key"
SERVICE_PATH = "/r1/VN/GOV/000.00.00.H40/backend/echo/v1/item"
BODY = b"x" * 1024
RABBIT = os.environ.get("LGSP_BENCH_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


# ---- the processes -------------------------------------------------------------------------------


def backend_app(latency: float) -> Any:
    """A raw ASGI backend answering 1 KB after `latency` seconds (no framework in the way)."""
    payload = b"y" * 1024

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        if latency:
            await asyncio.sleep(latency)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/octet-stream")],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    return app


def run_backend(port: int, latency_ms: float) -> None:
    import uvicorn

    uvicorn.run(
        backend_app(latency_ms / 1000.0),
        host="127.0.0.1",
        port=port,
        log_level="error",
        access_log=False,
        loop="uvloop",
        http="httptools",
    )


def run_hub(
    port: int, backend_url: str, broker_url: str, store_url: str, namespace: str, role: str = "all"
) -> None:
    """A hub process: gateway and workers ("all"), the gateway alone, or a worker alone."""
    import gc

    import uvloop

    from hub.runtime import Hub
    from hub.serving import AppServer
    from hub.settings import load_settings

    config = {
        "broker": {"url": broker_url, "namespace": namespace, "prefetch": 64},
        "store": {"url": store_url},
        "gateway": {"request_timeout": 30},
        "members": {CLIENT: {"api_keys": [KEY]}},
        "connectors": {
            "backend": {
                "type": "rest",
                "settings": {"base_url": backend_url, "max_connections": 64},
                "concurrency": 64,
            }
        },
        "services": {"VN/GOV/000.00.00.H40/backend/echo/v1": {"connector": "backend"}},
        "acl": [{"client": CLIENT, "services": ["*"]}],
    }

    async def main() -> None:
        hub = Hub.create(load_settings(data=config, environ={}))
        await hub.start()
        if role != "gateway":
            await hub.start_workers()
        server = None
        if role != "worker":
            server = await AppServer(hub.gateway_app(), port=port, http="httptools").start()
        # Start-up leaves ~150k long-lived objects (settings, schemas, SQLAlchemy, pika) that every
        # full collection would scan again: 100+ ms pauses under load. Freeze them out of the GC,
        # and collect the young generation every 20k net allocations instead of 700 (each request
        # allocates hundreds of short-lived containers): GC time under load 0.6 s -> 0.07 s in 12 s.
        gc.freeze()
        gc.set_threshold(20_000)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        print("READY", flush=True)
        await stop.wait()
        if server is not None:
            await server.stop()
        await hub.stop(timeout=5)
        if role != "worker" and broker_url.startswith("amqp"):
            delete_namespace(broker_url, hub, namespace)

    uvloop.run(main())


def spawn(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_ready(process: subprocess.Popen[bytes]) -> None:
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith(b"READY"):
        raise RuntimeError(
            f"hub did not start: {line!r} {process.stderr.read() if process.stderr else b''!r}"
        )


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of processes so far (Linux /proc; NaN elsewhere)."""
    return sum(process_cpu_seconds(pid) for pid in pids)


# ---- the load generators -------------------------------------------------------------------------


async def python_load(url: str, headers: dict[str, str], in_flight: int, seconds: float) -> dict[str, float]:
    """Closed-loop load: `in_flight` tasks, each on its own keep-alive connection, for `seconds`.

    Built on the hub's aiohttp-backed transport (~0.3 ms of CPU a request), not on httpx's default
    one, which costs several times more here and would be measured instead of the hub. Used only
    for --quick and where wrk is missing; full runs drive both regimes with wrk.
    """
    import httpx

    from hub.http import HubAiohttpTransport

    transport = HubAiohttpTransport(trust_env=False, limits=httpx.Limits(max_connections=in_flight))
    request = httpx.Request("POST", url, headers=headers, content=BODY)
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            begin = time.perf_counter()
            response = await transport.handle_async_request(request)
            await response.aread()
            if response.status_code != 200:
                errors += 1
            latencies.append(time.perf_counter() - begin)

    start = time.perf_counter()
    try:
        await asyncio.gather(*(worker() for _ in range(in_flight)))
    finally:
        await transport.aclose()
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "errors": errors,
    }


def wrk_load(url: str, headers: dict[str, str], in_flight: int, seconds: float) -> dict[str, float]:
    """wrk, one thread, one connection per request in flight, with its latency distribution."""
    lines = ['wrk.method = "POST"', f'wrk.body = string.rep("x", {len(BODY)})']
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    return run_wrk(
        "\n".join(lines) + "\n",
        ["-t1", f"-c{in_flight}", f"-d{max(1, round(seconds))}s", url],
        timeout=seconds + 60,
    )


# ---- the run -------------------------------------------------------------------------------------

# (row label, broker, gateway and worker in separate processes). The first is what `lgsp serve`
# runs on RabbitMQ by default: the gateway alone, the connector workers in `lgsp worker` processes.
SETUPS = {
    "rabbitmq-2proc": ("hub (rabbitmq, 2 proc)", "rabbitmq", True),
    "rabbitmq": ("hub (rabbitmq, 1 proc)", "rabbitmq", False),
    "embedded": ("hub (embedded)", "embedded", False),
}


def measure(
    regime: str,
    latency_ms: float,
    in_flight: int,
    seconds: float,
    setups: list[str],
    use_wrk: bool,
    rounds: int = 1,
) -> list[dict[str, Any]]:
    """One row per path: the median of `rounds` interleaved rounds (direct, then each hub setup).

    Interleaving puts every path through the same moments of the machine: a background burst that
    slows one round slows that round's direct calls too, and the median leaves the odd round out.
    """
    runs: dict[str, list[dict[str, Any]]] = {"direct": []}
    backend_port = free_port()
    backend = spawn("backend", str(backend_port), str(latency_ms))
    workdir = Path(tempfile.mkdtemp(prefix="lgsp-bench-"))
    try:
        wait_port(backend_port)
        backend_url = f"http://127.0.0.1:{backend_port}"

        def load(url: str, headers: dict[str, str]) -> dict[str, float]:
            if use_wrk:
                return wrk_load(url, headers, in_flight, seconds)
            return asyncio.run(python_load(url, headers, in_flight, seconds))

        load(f"{backend_url}/warm", {})  # warm-up
        for round_ in range(rounds):
            runs["direct"].append({"cpu": float("nan"), **load(f"{backend_url}/item", {})})
            for setup in setups:
                label, broker, split = SETUPS[setup]
                hub_port = free_port()
                broker_url = RABBIT if broker == "rabbitmq" else "embedded://"
                common = (
                    backend_url,
                    broker_url,
                    f"sqlite+aiosqlite:///{workdir}/{setup}-{round_}.db",
                    f"bench{os.getpid()}",
                )
                processes = [spawn("hub", str(hub_port), *common, "gateway" if split else "all")]
                try:
                    wait_ready(processes[0])
                    if split:
                        processes.append(spawn("hub", "0", *common, "worker"))
                        wait_ready(processes[1])
                    headers = {"X-Road-Client": CLIENT, "X-Api-Key": KEY}
                    url = f"http://127.0.0.1:{hub_port}{SERVICE_PATH}"
                    load(url, headers)  # warm-up
                    pids = [p.pid for p in processes]
                    cpu_before, began = cpu_seconds(pids), time.perf_counter()
                    result = load(url, headers)
                    cpu = 100 * (cpu_seconds(pids) - cpu_before) / (time.perf_counter() - began)
                    runs.setdefault(label, []).append({"cpu": cpu, **result})
                finally:
                    for process in reversed(processes):
                        stop(process)
    finally:
        stop(backend)
        shutil.rmtree(workdir, ignore_errors=True)
    rows = []
    for path, results in runs.items():
        row: dict[str, Any] = {"regime": regime, "path": path, "rounds": len(results)}
        for key in ("rps", "p50", "p99", "errors", "cpu"):
            row[key] = statistics.median(r[key] for r in results)
        row["ratios"] = [r["rps"] / d["rps"] for r, d in zip(results, runs["direct"], strict=True)]
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="seconds-long smoke run")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of one row's run")
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="interleaved rounds in regime a, medians reported (3; quick: 1)",
    )
    parser.add_argument("--regime-a-only", action="store_true", help="skip regime (b), the saturation runs")
    parser.add_argument("--no-rabbitmq", action="store_true", help="embedded broker only")
    parser.add_argument(
        "--no-wrk", action="store_true", help="use the asyncio client even if wrk is installed"
    )
    args = parser.parse_args()
    seconds = 1.0 if args.quick else args.seconds
    if args.no_rabbitmq:
        setups = ["embedded"]
    elif args.quick:
        setups = ["rabbitmq-2proc", "embedded"]
    else:
        setups = ["rabbitmq-2proc", "rabbitmq", "embedded"]
    use_wrk = shutil.which("wrk") is not None and not args.quick and not args.no_wrk
    rounds = args.rounds or (1 if args.quick else 3)
    rows = measure("a: 20 ms, 8 in flight", 20, 8, seconds, setups, use_wrk=use_wrk, rounds=rounds)
    if not args.regime_a_only:
        rows += measure("b: 0 ms, 32 in flight", 0, 32, seconds, setups, use_wrk=use_wrk, rounds=1)
    print(
        f"load generator: {'wrk -t1' if use_wrk else 'asyncio keep-alive client'}; regime a: median of "
        f"{rounds} interleaved round(s) of {seconds:g} s per path, regime b: one round"
    )
    print(
        f"{'regime':<24} {'path':<24} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'hub cpu':>8}"
    )
    for row in rows:
        cpu = "" if row["cpu"] != row["cpu"] else f"{row['cpu']:.0f}%"
        print(
            f"{row['regime']:<24} {row['path']:<24} {row['rps']:>9.0f} {row['p50']:>8.2f} "
            f"{row['p99']:>8.2f} {row['errors']:>7.0f} {cpu:>8}"
        )
    by = {(r["regime"][0], r["path"]): r for r in rows}
    for regime in ("a",) if args.regime_a_only else ("a", "b"):
        direct = by[(regime, "direct")]
        for setup in setups:
            label = SETUPS[setup][0]
            hub = by[(regime, label)]
            spread = ""
            if len(hub["ratios"]) > 1:
                spread = f" (rounds {min(hub['ratios']):.3f}-{max(hub['ratios']):.3f})"
            print(
                f"regime {regime} {label}: throughput hub/direct {hub['rps'] / direct['rps']:.3f}{spread}, "
                f"added p50 {hub['p50'] - direct['p50']:.2f} ms, added p99 {hub['p99'] - direct['p99']:.2f} ms"
            )
    head = SETUPS[setups[0]][0]
    ratio = by[("a", head)]["rps"] / by[("a", "direct")]["rps"]
    print(json.dumps({"rows": rows}), file=sys.stderr)
    print(f"RATIO hub/direct {ratio:.3f}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "backend":
        run_backend(int(sys.argv[2]), float(sys.argv[3]))
    elif len(sys.argv) > 1 and sys.argv[1] == "hub":
        run_hub(int(sys.argv[2]), *sys.argv[3:7], *sys.argv[7:8])
    else:
        main()
