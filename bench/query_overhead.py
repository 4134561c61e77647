"""What the hub adds to a synchronous query: direct calls vs calls through the hub, same run.

Regime (a): backend latency 20 ms, 8 requests in flight (the latency the hub adds).
Regime (b): backend latency 0 ms, 32 in flight, driven by wrk (saturation: the most it carries).
Each row: the same 1 KB POST, the same local backend, direct or through the hub on RabbitMQ or on
the embedded broker (gateway + workers in one hub process). The LAST line is
``RATIO hub/direct <value>`` for RabbitMQ in regime (a).

    python bench/query_overhead.py            # full run (about 2 minutes)
    python bench/query_overhead.py --quick    # seconds-long smoke run (CI)
"""

import argparse
import asyncio
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

# bench/mappings.py would shadow the `mappings` package when this file runs as a script.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

CLIENT = "VN/GOV/000.00.00.H40/bench"
KEY = "bench-key"
SERVICE_PATH = "/r1/VN/GOV/000.00.00.H40/backend/echo/v1/item"
BODY = b"x" * 1024
RABBIT = os.environ.get("LGSP_BENCH_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


def run_hub(port: int, backend_url: str, broker_url: str, store_url: str, namespace: str) -> None:
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
                "settings": {"base_url": backend_url, "clients": 16},
                "concurrency": 64,
            }
        },
        "services": {"VN/GOV/000.00.00.H40/backend/echo/v1": {"connector": "backend"}},
        "acl": [{"client": CLIENT, "services": ["*"]}],
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


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listening on {port}")


def spawn(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()


# ---- the load generators -------------------------------------------------------------------------


async def python_load(url: str, headers: dict[str, str], in_flight: int, seconds: float) -> dict[str, float]:
    """Closed-loop load: `in_flight` tasks, each with its own connection, for `seconds`."""
    import httpx

    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors
        async with httpx.AsyncClient(timeout=30) as client:
            while time.perf_counter() < deadline:
                begin = time.perf_counter()
                response = await client.post(url, content=BODY, headers=headers)
                if response.status_code != 200:
                    errors += 1
                latencies.append(time.perf_counter() - begin)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "errors": errors,
        "n": len(latencies),
    }


def wrk_load(url: str, headers: dict[str, str], in_flight: int, seconds: float) -> dict[str, float]:
    """Saturation load from wrk (not the bottleneck, unlike a Python client)."""
    lines = ['wrk.method = "POST"', f'wrk.body = string.rep("x", {len(BODY)})']
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("\n".join(lines) + "\n")
    out = subprocess.run(
        ["wrk", "-t2", f"-c{in_flight}", f"-d{max(1, int(seconds))}s", "--latency", "-s", script.name, url],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    os.unlink(script.name)

    def ms(label: str) -> float:
        match = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not match:
            return float("nan")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {
        "rps": rps,
        "p50": ms("50%"),
        "p99": ms("99%"),
        "errors": int(non_2xx.group(1)) if non_2xx else 0,
        "n": 0,
    }


# ---- the run -------------------------------------------------------------------------------------


def measure(
    regime: str, latency_ms: float, in_flight: int, seconds: float, brokers: list[str], use_wrk: bool
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
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
        rows.append({"regime": regime, "path": "direct", **load(f"{backend_url}/item", {})})
        for broker in brokers:
            hub_port = free_port()
            broker_url = RABBIT if broker == "rabbitmq" else "embedded://"
            hub = spawn(
                "hub",
                str(hub_port),
                backend_url,
                broker_url,
                f"sqlite+aiosqlite:///{workdir}/{broker}.db",
                f"bench{os.getpid()}",
            )
            try:
                assert hub.stdout is not None
                line = hub.stdout.readline()
                if not line.startswith(b"READY"):
                    raise RuntimeError(
                        f"hub did not start: {line!r} {hub.stderr.read() if hub.stderr else b''!r}"
                    )
                headers = {"X-Road-Client": CLIENT, "X-Api-Key": KEY}
                url = f"http://127.0.0.1:{hub_port}{SERVICE_PATH}"
                load(url, headers)  # warm-up
                rows.append({"regime": regime, "path": f"hub ({broker})", **load(url, headers)})
            finally:
                stop(hub)
    finally:
        stop(backend)
        shutil.rmtree(workdir, ignore_errors=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="seconds-long smoke run")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--no-rabbitmq", action="store_true", help="embedded broker only")
    args = parser.parse_args()
    seconds = 1.0 if args.quick else args.seconds
    brokers = ["embedded"] if args.no_rabbitmq else ["rabbitmq", "embedded"]
    use_wrk = shutil.which("wrk") is not None and not args.quick
    rows = measure("a: 20 ms, 8 in flight", 20, 8, seconds, brokers, use_wrk=False)
    rows += measure("b: 0 ms, 32 in flight", 0, 32, seconds, brokers, use_wrk=use_wrk)
    print(f"{'regime':<24} {'path':<18} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for row in rows:
        print(
            f"{row['regime']:<24} {row['path']:<18} {row['rps']:>9.0f} {row['p50']:>8.2f} {row['p99']:>8.2f} {row['errors']:>7.0f}"
        )
    by = {(r["regime"][0], r["path"]): r for r in rows}
    for regime in ("a", "b"):
        direct = by[(regime, "direct")]
        for broker in brokers:
            hub = by[(regime, f"hub ({broker})")]
            print(
                f"regime {regime} {broker}: throughput hub/direct {hub['rps'] / direct['rps']:.3f}, "
                f"added p50 {hub['p50'] - direct['p50']:.2f} ms, added p99 {hub['p99'] - direct['p99']:.2f} ms"
            )
    head = brokers[0]
    ratio = by[("a", f"hub ({head})")]["rps"] / by[("a", "direct")]["rps"]
    print(json.dumps({"rows": rows}), file=sys.stderr)
    print(f"RATIO hub/direct {ratio:.3f}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "backend":
        run_backend(int(sys.argv[2]), float(sys.argv[3]))
    elif len(sys.argv) > 1 and sys.argv[1] == "hub":
        run_hub(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6])
    else:
        main()
