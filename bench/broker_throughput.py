"""Broker throughput: confirmed publishes, manual-ack consumption and RPC, on RabbitMQ and embedded.

    python bench/broker_throughput.py [--quick] [--url amqp://guest:guest@127.0.0.1:5672/%2F]

For each broker: publish-confirmed msg/s (pipelined, `--window` in flight), consume msg/s with a
manual ack per message (queue pre-filled, `--prefetch`), and RPC calls/s with `--concurrency`
requests in flight (a responder on its own connection replies and acks; transient messages unless
`--persistent`). Data messages are persistent, each publish confirmed. Prints a table; the LAST
line is `RATIO rabbitmq-rpc/embedded-rpc <value>`.
"""

import argparse
import asyncio
import contextlib
import socket
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlparse

import pika

from hub.broker.base import Broker, Delivery, Message, QueueSpec, Topology
from hub.broker.embedded import EmbeddedBroker
from hub.broker.rabbitmq import RabbitBroker


@dataclass
class Result:
    name: str
    publish: float = 0.0
    consume: float = 0.0
    rpc: float = 0.0
    rpc_latencies: list[float] = field(default_factory=list)

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.rpc_latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000 if ordered else 0.0


async def bench_publish(broker: Broker, queue: str, count: int, window: int, body: bytes) -> float:
    slots = asyncio.Semaphore(window)

    async def one() -> None:
        try:
            await broker.publish("", queue, Message(body))
        finally:
            slots.release()

    started = time.perf_counter()
    tasks = []
    for _ in range(count):
        await slots.acquire()
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    return count / (time.perf_counter() - started)


async def bench_consume(broker: Broker, queue: str, count: int, prefetch: int) -> float:
    done = asyncio.Event()
    acked = 0

    async def handler(delivery: Delivery) -> None:
        nonlocal acked
        await delivery.ack()
        acked += 1
        if acked == count:
            done.set()

    started = time.perf_counter()
    consumer = await broker.consume(queue, handler, prefetch=prefetch)
    await done.wait()
    elapsed = time.perf_counter() - started
    await consumer.cancel()
    return count / elapsed


async def bench_rpc(
    client: Broker,
    server: Broker,
    queue: str,
    calls: int,
    concurrency: int,
    body: bytes,
    result: Result,
    persistent: bool = False,
) -> float:
    async def respond(delivery: Delivery) -> None:
        await server.reply(delivery, Message(delivery.message.body, persistent=persistent))
        await delivery.ack()

    consumer = await server.consume(queue, respond, prefetch=2 * concurrency)
    remaining = calls

    async def caller() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            sent = time.perf_counter()
            await client.request("", queue, Message(body, persistent=persistent), timeout=30)
            result.rpc_latencies.append(time.perf_counter() - sent)

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    await consumer.cancel()
    return calls / elapsed


async def run_one(name: str, make: Callable[[], tuple[Broker, Broker]], args: argparse.Namespace) -> Result:
    result = Result(name)
    body = b"x" * args.size
    client, server = make()  # two connections on RabbitMQ; one shared instance when embedded
    await client.connect()
    await server.connect()
    suffix = uuid.uuid4().hex[:8]
    data, rpc = (
        QueueSpec(f"lgsp-bench.data.{suffix}", dead_letter=False),
        QueueSpec(f"lgsp-bench.rpc.{suffix}"),
    )
    try:
        await client.declare(Topology(queues=(data, rpc)))
        await bench_publish(client, data.name, min(2000, args.messages), args.window, body)  # warm-up
        await client.purge(data.name)
        result.publish = await bench_publish(client, data.name, args.messages, args.window, body)
        result.consume = await bench_consume(server, data.name, args.messages, args.prefetch)
        rpc_args = (client, server, rpc.name)
        await bench_rpc(
            *rpc_args, min(500, args.calls), args.concurrency, body, Result(name), args.persistent
        )
        result.rpc = await bench_rpc(*rpc_args, args.calls, args.concurrency, body, result, args.persistent)
    finally:
        await client.close()
        await server.close()
        if name == "rabbitmq":
            _delete_queues(args.url, data, rpc)
    return result


def _delete_queues(url: str, *specs: QueueSpec) -> None:
    with contextlib.closing(pika.BlockingConnection(pika.URLParameters(url))) as connection:
        channel = connection.channel()
        for spec in specs:
            channel.queue_delete(spec.name)
            channel.queue_delete(spec.dlq_name)


def _reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 5672), timeout=1.0):
            return True
    except OSError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a seconds-long run")
    parser.add_argument("--url", default="amqp://guest:guest@127.0.0.1:5672/%2F")
    parser.add_argument("--messages", type=int, default=None, help="messages to publish and consume")
    parser.add_argument("--calls", type=int, default=None, help="RPC calls")
    parser.add_argument("--concurrency", type=int, default=32, help="RPC calls in flight")
    parser.add_argument("--window", type=int, default=1000, help="publishes in flight")
    parser.add_argument("--prefetch", type=int, default=256)
    parser.add_argument("--size", type=int, default=256, help="body bytes")
    parser.add_argument("--persistent", action="store_true", help="persistent RPC requests and replies")
    args = parser.parse_args(argv)
    args.messages = args.messages or (5_000 if args.quick else 50_000)
    args.calls = args.calls or (3_000 if args.quick else 30_000)

    def rabbit_pair() -> tuple[Broker, Broker]:
        return (
            RabbitBroker(args.url, connection_name="lgsp-bench-client"),
            RabbitBroker(args.url, connection_name="lgsp-bench-server"),
        )

    def embedded_pair() -> tuple[Broker, Broker]:
        shared = EmbeddedBroker()
        return shared, shared

    brokers: list[tuple[str, Callable[[], tuple[Broker, Broker]]]] = []
    if _reachable(args.url):
        brokers.append(("rabbitmq", rabbit_pair))
    else:
        print(f"RabbitMQ is not reachable at {args.url}; measuring the embedded broker only", file=sys.stderr)
    brokers.append(("embedded", embedded_pair))

    results = [asyncio.run(run_one(name, make, args)) for name, make in brokers]
    print(
        f"{args.messages} messages of {args.size} B, {args.calls} RPC calls with {args.concurrency} in flight"
    )
    header = f"{'broker':<10} {'publish msg/s':>14} {'consume msg/s':>14} {'rpc calls/s':>12} {'rpc p50 ms':>11} {'rpc p99 ms':>11}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.name:<10} {r.publish:>14,.0f} {r.consume:>14,.0f} {r.rpc:>12,.0f} "
            f"{r.percentile(0.5):>11.2f} {r.percentile(0.99):>11.2f}"
        )
    by_name = {r.name: r for r in results}
    if "rabbitmq" in by_name:
        ratio = by_name["rabbitmq"].rpc / by_name["embedded"].rpc
        print(f"RATIO rabbitmq-rpc/embedded-rpc {ratio:.3f}")
    else:
        print("RATIO rabbitmq-rpc/embedded-rpc nan")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
