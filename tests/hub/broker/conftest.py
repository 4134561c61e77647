"""Broker test fixtures: both implementations, unique names, cleanup, and a way to cut a connection."""

import asyncio
import contextlib
import re
import shutil
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pika
import pytest

from hub.broker.base import Broker, ExchangeSpec, QueueSpec
from hub.broker.embedded import EmbeddedBroker
from hub.broker.rabbitmq import RabbitBroker
from tests.conftest import RABBITMQ_URL


class Scratch:
    """Unique queue and exchange names for one test, deleted from RabbitMQ afterwards."""

    def __init__(self) -> None:
        self.run = uuid.uuid4().hex[:10]
        self.queues: list[QueueSpec] = []
        self.exchanges: list[str] = []

    def name(self, prefix: str) -> str:
        return f"lgsp-test.{prefix}.{self.run}.{uuid.uuid4().hex[:6]}"

    def queue(self, prefix: str = "q", **options: Any) -> QueueSpec:
        spec = QueueSpec(self.name(prefix), **options)
        self.queues.append(spec)
        return spec

    def exchange(self, kind: str = "topic") -> ExchangeSpec:
        spec = ExchangeSpec(self.name("x"), kind)  # type: ignore[arg-type]
        self.exchanges.append(spec.name)
        return spec

    def delete_from(self, url: str) -> None:
        # Plain blocking pika, independent of the code under test.
        with contextlib.closing(pika.BlockingConnection(pika.URLParameters(url))) as connection:
            channel = connection.channel()
            for spec in self.queues:
                names = [spec.name, spec.dlq_name, *(spec.retry_queue_name(d) for d in spec.retry_delays_ms)]
                for name in names:
                    channel.queue_delete(name)
            for name in self.exchanges:
                channel.exchange_delete(name)


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Wait until `predicate()` holds, failing the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.01)


async def force_close(broker: RabbitBroker) -> bool:
    """Close `broker`'s connection under it: from RabbitMQ's side, else by shutting its socket."""
    try:
        return await _close_from_server(broker.connection_name)
    except (OSError, RuntimeError):
        pass
    cut_socket(broker)  # without rabbitmqctl (or the right to run it)
    return True


def cut_socket(broker: RabbitBroker) -> None:
    """Drop `broker`'s TCP stream at once, as a network failure would (reaches into its transport)."""
    transport = broker._link.connection._transport  # type: ignore[union-attr]
    transport.get_extra_info("socket").shutdown(socket.SHUT_RDWR)


async def _close_from_server(connection_name: str) -> bool:
    if shutil.which("rabbitmqctl") is None:
        raise RuntimeError("rabbitmqctl is not installed")
    listing = await _run(
        "rabbitmqctl", "list_connections", "-q", "--no-table-headers", "pid", "client_properties"
    )
    marker = f'{{"connection_name","{connection_name}"}}'
    pids = [line.split("\t", 1)[0] for line in listing.splitlines() if marker in line]
    for pid in pids:
        if re.fullmatch(r"<[^>]+>", pid):
            await _run(
                "rabbitmqctl", "close_connection", pid, "lgsp test: connection closed under the client"
            )
    return bool(pids)


async def _run(*command: str) -> str:
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {err.decode(errors='replace')}")
    return out.decode(errors="replace")


RabbitFactory = Callable[..., Awaitable[RabbitBroker]]


@pytest.fixture
def scratch(request: pytest.FixtureRequest) -> Iterator[Scratch]:
    names = Scratch()
    yield names
    if "rabbitmq" in request.keywords:
        names.delete_from(RABBITMQ_URL)


def _rabbit(url: str, scratch: Scratch, index: int, **options: Any) -> RabbitBroker:
    options.setdefault("close_timeout", 2.0)
    return RabbitBroker(url, connection_name=f"lgsp-test-{scratch.run}-{index}", **options)


@pytest.fixture
async def rabbit_factory(rabbitmq_url: str, scratch: Scratch) -> AsyncIterator[RabbitFactory]:
    """Connected RabbitBrokers with unique connection names, closed afterwards."""
    brokers: list[RabbitBroker] = []

    async def make(**options: Any) -> RabbitBroker:
        broker = _rabbit(rabbitmq_url, scratch, len(brokers), **options)
        brokers.append(broker)
        await broker.connect()
        return broker

    yield make
    for broker in brokers:
        await broker.close()


@pytest.fixture(params=["embedded", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)])
async def broker(request: pytest.FixtureRequest, scratch: Scratch) -> AsyncIterator[Broker]:
    """A connected broker of each implementation; the contract suite runs once per implementation."""
    implementation: Broker
    if request.param == "embedded":
        implementation = EmbeddedBroker()
    else:
        implementation = _rabbit(request.getfixturevalue("rabbitmq_url"), scratch, 0)
    await implementation.connect()
    yield implementation
    await implementation.close()
