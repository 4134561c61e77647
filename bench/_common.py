"""What the benchmark scripts share: local ports, child processes and their CPU time.

Scripts run as files (`python bench/x.py`) put the repository root first on sys.path and take bench/
off it (bench/mappings.py would shadow the `mappings` package), then import this as `bench._common`.
"""

import os
import re
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, timeout: float = 1.0) -> bool:
    """Whether something accepts connections on 127.0.0.1:`port`."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_port(port: int, timeout: float = 30.0) -> None:
    """Wait until something listens on 127.0.0.1:`port`; TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port, timeout=0.5):
            return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listening on {port}")


def stop(process: "subprocess.Popen[bytes]", timeout: float = 15.0) -> None:
    """SIGTERM, then SIGKILL after `timeout` seconds."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; NaN when it cannot be read)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(script: str, args: list[str], timeout: float) -> dict[str, float]:
    """Run wrk with a Lua `script` and `args` (threads, connections, duration, URL, ...) and read its
    report: req/s, p50 and p99 in ms (`--latency` is added), errors (non-2xx/3xx and socket errors,
    timeouts included) and the number of requests."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as file:
        file.write(script)
    try:
        out = subprocess.run(
            ["wrk", "--latency", "-s", file.name, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        ).stdout
    finally:
        os.unlink(file.name)

    def ms(label: str) -> float:
        match = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not match:
            return float("nan")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    total = re.search(r"(\d+) requests in", out)
    return {
        "rps": float(rps.group(1)) if rps else float("nan"),
        "p50": ms("50%"),
        "p99": ms("99%"),
        "errors": (int(non_2xx.group(1)) if non_2xx else 0)
        + (sum(int(n) for n in sockets.groups()) if sockets else 0),
        "n": int(total.group(1)) if total else 0,
    }


def delete_namespace(url: str, hub: Any, namespace: str) -> None:
    """Drop the queues and exchanges `hub` declares in `namespace`, so runs do not pile up on RabbitMQ."""
    import pika

    from hub.topology import request_topology

    topology = request_topology(hub.settings)
    for extension in hub.extensions:
        topology = topology.merge(extension.topology())
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        for queue in topology.queues:
            retries = [queue.retry_queue_name(delay) for delay in queue.retry_delays_ms]
            for name in (queue.name, queue.dlq_name, *retries):
                channel.queue_delete(name)
        for exchange in topology.exchanges:
            if exchange.name.startswith(namespace):
                channel.exchange_delete(exchange.name)
    finally:
        connection.close()
