"""RabbitBroker under failure: connections cut under it, workers killed mid-message, bad arguments."""

import asyncio
import collections
import contextlib
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import pika
import pytest

from hub.broker.base import Delivery, Message, Topology
from hub.broker.rabbitmq import RabbitBroker
from hub.errors import BrokerConnectionError, BrokerError, ConfigError, PublishNackedError
from tests.hub.broker.conftest import RabbitFactory, Scratch, cut_socket, eventually, force_close
from tests.hub.test_http_transport import _self_signed

pytestmark = pytest.mark.rabbitmq

FAST_RECONNECT = (0.05, 0.1, 0.2)


async def _publish_retrying(broker: RabbitBroker, queue: str, message: Message) -> None:
    # What a caller does with BrokerConnectionError: try again.
    for _ in range(50):
        try:
            await broker.publish("", queue, message)
            return
        except BrokerConnectionError:
            await asyncio.sleep(0.1)
    pytest.fail("publishing never succeeded after the reconnect")


async def test_rabbit_connection_closed_mid_run_resumes_and_loses_nothing(
    rabbit_factory: RabbitFactory, scratch: Scratch
) -> None:
    # Given one broker consuming what it publishes, 50 publishes in flight, retried on failure
    broker = await rabbit_factory(reconnect_delays=FAST_RECONNECT)
    spec = scratch.queue()
    await broker.declare(Topology(queues=(spec,)))
    consumed: dict[int, list[bool]] = collections.defaultdict(list)

    async def record(delivery: Delivery) -> None:
        consumed[int(delivery.message.message_id or -1)].append(delivery.redelivered)
        await delivery.ack()

    await broker.consume(spec.name, record, prefetch=50)
    confirmed: set[int] = set()
    retried: set[int] = set()
    outcomes: collections.Counter[str] = collections.Counter()
    numbers = iter(range(1_000_000))
    cut_at: list[int] = []

    async def publisher() -> None:
        # Publish until 500 more messages are confirmed after the cut.
        while not cut_at or len(confirmed) < cut_at[0] + 500:
            n = next(numbers)
            while True:
                try:
                    await asyncio.wait_for(
                        broker.publish("", spec.name, Message(b"%d" % n, message_id=str(n))), 10
                    )
                except BrokerConnectionError:
                    outcomes["failed"] += 1
                    retried.add(n)
                    await asyncio.sleep(0.05)
                    continue
                except TimeoutError:
                    outcomes["hung"] += 1
                    return
                outcomes["confirmed"] += 1
                confirmed.add(n)
                break

    async def cut() -> bool:
        await eventually(lambda: len(confirmed) >= 300, timeout=20, what="the first publishes")
        found = await force_close(broker)
        cut_at.append(len(confirmed))
        return found

    # When the connection is closed by RabbitMQ while publishing and consuming
    cutter = asyncio.create_task(cut())
    await asyncio.gather(*(publisher() for _ in range(50)))
    assert await cutter, "the test connection was not found in rabbitmqctl list_connections"
    # Then no publish hung, and every confirmed message, before and after the cut, was consumed
    assert outcomes["hung"] == 0
    await eventually(lambda: set(consumed) >= confirmed, timeout=15, what="every confirmed message consumed")
    assert len(confirmed) >= cut_at[0] + 500
    # And any duplicate is a redelivery or a publish the client was told had failed
    for n, flags in consumed.items():
        if len(flags) > 1:
            assert n in retried or any(flags[1:]), f"message {n} consumed {len(flags)} times: {flags}"
    assert await broker.healthy()


async def test_rabbit_publishes_in_flight_when_the_network_drops_fail_with_connection_error(
    rabbit_factory: RabbitFactory, scratch: Scratch
) -> None:
    # Given 300 confirmed publishes, then 300 more handed to the connection but not yet confirmed
    broker = await rabbit_factory(reconnect_delays=FAST_RECONNECT, reconnect_wait=5.0)
    spec = scratch.queue()
    await broker.declare(Topology(queues=(spec,)))
    await asyncio.gather(*(broker.publish("", spec.name, Message(b"before")) for _ in range(300)))
    in_flight = [asyncio.create_task(broker.publish("", spec.name, Message(b"during"))) for _ in range(300)]
    await asyncio.sleep(0)
    # When the TCP stream drops under them
    cut_socket(broker)
    # Then every one of them settles promptly, each with BrokerConnectionError (none silently lost)
    done, pending = await asyncio.wait(in_flight, timeout=10)
    assert not pending
    errors = [t.exception() for t in done]
    assert all(isinstance(e, BrokerConnectionError) for e in errors), {type(e) for e in errors}
    # And after the reconnect the confirmed ones are all there, and publishing works again (the
    # first publish goes on the wire at once, so it may have arrived unconfirmed: its caller was
    # told to retry, which is at-least-once, not a loss)
    await _publish_retrying(broker, spec.name, Message(b"after"))
    assert 301 <= await broker.message_count(spec.name) <= 302


async def test_rabbit_consumers_are_resubscribed_after_reconnect(
    rabbit_factory: RabbitFactory, scratch: Scratch
) -> None:
    # Given a consumer on a queue
    broker = await rabbit_factory(reconnect_delays=FAST_RECONNECT)
    spec = scratch.queue()
    await broker.declare(Topology(queues=(spec,)))
    got: list[bytes] = []

    async def handler(delivery: Delivery) -> None:
        got.append(delivery.message.body)
        await delivery.ack()

    await broker.consume(spec.name, handler)
    # When its connection is closed under it and comes back
    await force_close(broker)
    # Then messages published afterwards reach the same consumer
    await _publish_retrying(broker, spec.name, Message(b"after"))
    await eventually(lambda: got == [b"after"], what="delivery after the reconnect")


async def test_rabbit_stale_ack_after_reconnect_is_dropped_and_message_redelivered(
    rabbit_factory: RabbitFactory, scratch: Scratch
) -> None:
    # Given a consumer holding an unacked message
    broker = await rabbit_factory(reconnect_delays=FAST_RECONNECT)
    spec = scratch.queue()
    await broker.declare(Topology(queues=(spec,)))
    held: list[Delivery] = []

    async def hold(delivery: Delivery) -> None:
        held.append(delivery)

    await broker.consume(spec.name, hold)
    await broker.publish("", spec.name, Message(b"work", message_id="w-1"))
    await eventually(lambda: len(held) == 1, what="the first delivery")
    # When the connection drops and the old delivery is acked after the reconnect
    await force_close(broker)
    await eventually(lambda: len(held) == 2, what="the redelivery")
    await held[0].ack()
    await held[0].nack(requeue=True)
    # Then nothing breaks: the message came back flagged redelivered, and can be acked for real
    assert held[1].message.message_id == "w-1" and held[1].redelivered
    await held[1].ack()
    assert await broker.healthy()
    await asyncio.sleep(0.1)
    assert len(held) == 2


async def test_rabbit_worker_killed_before_ack_message_goes_to_another_worker(
    rabbit_factory: RabbitFactory, scratch: Scratch
) -> None:
    # Given worker A has received a job and not acked it
    worker_a = await rabbit_factory()
    worker_b = await rabbit_factory()
    spec = scratch.queue()
    await worker_a.declare(Topology(queues=(spec,)))
    taken: asyncio.Event = asyncio.Event()

    async def take_and_stall(delivery: Delivery) -> None:
        taken.set()

    await worker_a.consume(spec.name, take_and_stall)
    await worker_a.publish("", spec.name, Message(b"job", message_id="job-1"))
    await asyncio.wait_for(taken.wait(), 5)
    # When A dies without acking
    await worker_a.close()
    # Then worker B gets the job, flagged redelivered
    received: asyncio.Future[Delivery] = asyncio.get_running_loop().create_future()

    async def finish(delivery: Delivery) -> None:
        received.set_result(delivery)
        await delivery.ack()

    await worker_b.consume(spec.name, finish)
    delivery = await asyncio.wait_for(received, 5)
    assert delivery.message.message_id == "job-1"
    assert delivery.redelivered


async def test_rabbit_request_in_flight_fails_fast_when_connection_drops(
    rabbit_factory: RabbitFactory, scratch: Scratch
) -> None:
    # Given a request waiting for a reply that will never come
    broker = await rabbit_factory(reconnect_delays=FAST_RECONNECT)
    spec = scratch.queue()
    await broker.declare(Topology(queues=(spec,)))
    request = asyncio.create_task(broker.request("", spec.name, Message(b"?"), timeout=30))
    await asyncio.sleep(0.1)
    assert not request.done()
    # When the connection drops / Then the request fails with BrokerConnectionError, not a 30 s timeout
    started = time.monotonic()
    await force_close(broker)
    with pytest.raises(BrokerConnectionError):
        await asyncio.wait_for(request, 5)
    assert time.monotonic() - started < 5

    # And requests work again after the reconnect
    async def echo(delivery: Delivery) -> None:
        await broker.reply(delivery, Message(delivery.message.body * 2))
        await delivery.ack()

    await broker.purge(spec.name)
    await broker.consume(spec.name, echo)
    assert (await broker.request("", spec.name, Message(b"ab"), timeout=5)).body == b"abab"


async def test_rabbit_publish_while_disconnected_fails_after_a_bounded_wait(
    rabbit_factory: RabbitFactory, scratch: Scratch
) -> None:
    # Given a broker that will take seconds to reconnect, and waits 0.3 s for it
    broker = await rabbit_factory(reconnect_delays=(10.0,), reconnect_wait=0.3)
    spec = scratch.queue()
    await broker.declare(Topology(queues=(spec,)))
    # When its connection is closed
    await force_close(broker)
    # Then it becomes unhealthy, and a publish gives up after the bounded wait
    deadline = time.monotonic() + 5
    while await broker.healthy():
        assert time.monotonic() < deadline, "the drop was not noticed"
        await asyncio.sleep(0.01)
    started = time.monotonic()
    with pytest.raises(BrokerConnectionError):
        await broker.publish("", spec.name, Message(b"x"))
    assert 0.25 <= time.monotonic() - started < 2.0
    # And closing while it is still reconnecting is prompt
    started = time.monotonic()
    await broker.close()
    assert time.monotonic() - started < 2.0


async def test_rabbit_connect_to_unreachable_broker_raises_connection_error() -> None:
    broker = RabbitBroker("amqp://guest:guest@127.0.0.1:1/%2F", connect_timeout=2.0)
    started = time.monotonic()
    with pytest.raises(BrokerConnectionError):
        await broker.connect()
    assert time.monotonic() - started < 3.0
    assert not await broker.healthy()


def test_rabbit_bad_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        RabbitBroker("amqp://guest:guest@127.0.0.1:notaport/")
    with pytest.raises(ConfigError):
        RabbitBroker("amqp://127.0.0.1/", reconnect_delays=())


async def test_rabbit_redeclare_with_other_arguments_is_refused_and_broker_recovers(
    rabbit_factory: RabbitFactory, scratch: Scratch
) -> None:
    # Given a queue declared with a DLQ
    broker = await rabbit_factory()
    spec = scratch.queue(dead_letter=True)
    await broker.declare(Topology(queues=(spec,)))
    # When the same name is declared without one / Then RabbitMQ refuses it
    conflicting = type(spec)(spec.name, dead_letter=False)
    with pytest.raises(BrokerError, match="PRECONDITION_FAILED"):
        await broker.declare(Topology(queues=(conflicting,)))
    # And the broker keeps working
    await broker.publish("", spec.name, Message(b"still here"))
    assert await broker.message_count(spec.name) == 1


async def test_rabbit_quorum_queues_carry_dlq_and_retry(
    rabbit_factory: RabbitFactory, scratch: Scratch
) -> None:
    # Given a broker declaring quorum queues
    broker = await rabbit_factory(quorum=True)
    spec = scratch.queue(dead_letter=True, retry_delays_ms=(200,))
    await broker.declare(Topology(queues=(spec,)))
    # When a message is parked in the retry queue, comes back, and is rejected
    await broker.retry_later(spec, Message(b"q", message_id="q-1"), 200)
    deadline = time.monotonic() + 5
    while (delivery := await broker.get(spec.name)) is None:
        assert time.monotonic() < deadline, "the message did not come back from the retry queue"
        await asyncio.sleep(0.05)
    await delivery.nack(requeue=False)
    # Then it ends up in the quorum DLQ
    deadline = time.monotonic() + 5
    while await broker.message_count(spec.dlq_name) != 1:
        assert time.monotonic() < deadline, "the message did not reach the DLQ"
        await asyncio.sleep(0.05)


async def test_rabbit_topology_is_redeclared_after_reconnect(
    rabbit_factory: RabbitFactory, scratch: Scratch, rabbitmq_url: str
) -> None:
    # Given a declared queue with a DLQ that then disappears behind the broker's back
    broker = await rabbit_factory(reconnect_delays=FAST_RECONNECT)
    spec = scratch.queue(dead_letter=True)
    await broker.declare(Topology(queues=(spec,)))
    scratch.delete_from(rabbitmq_url)
    # When the connection is closed and comes back
    await force_close(broker)
    await _publish_retrying(broker, spec.name, Message(b"routed again"))
    # Then the queue and its DLQ exist again, with their dead-lettering
    assert await broker.message_count(spec.name) == 1
    delivery = await broker.get(spec.name)
    assert delivery is not None
    await delivery.nack(requeue=False)
    deadline = time.monotonic() + 5
    while await broker.message_count(spec.dlq_name) != 1:
        assert time.monotonic() < deadline, "the re-declared DLQ did not receive the rejected message"
        await asyncio.sleep(0.05)


async def test_rabbit_nacked_publish_raises_publish_nacked_error(
    rabbit_factory: RabbitFactory, scratch: Scratch, rabbitmq_url: str
) -> None:
    # Given a queue that holds one message and refuses publishes beyond that
    spec = scratch.queue(dead_letter=False)
    with contextlib.closing(pika.BlockingConnection(pika.URLParameters(rabbitmq_url))) as connection:
        arguments = {"x-max-length": 1, "x-overflow": "reject-publish"}
        connection.channel().queue_declare(spec.name, durable=True, arguments=arguments)
    broker = await rabbit_factory()
    await broker.publish("", spec.name, Message(b"fits"))
    # When one more is published / Then RabbitMQ nacks it and the caller is told
    with pytest.raises(PublishNackedError):
        await broker.publish("", spec.name, Message(b"overflows"))
    # And the channel goes on: the queue still holds the first one
    assert await broker.message_count(spec.name) == 1


async def test_rabbit_close_lets_a_running_handler_finish_and_ack(
    rabbit_factory: RabbitFactory, scratch: Scratch
) -> None:
    # Given a handler in the middle of a 0.3 s job
    worker = await rabbit_factory()
    observer = await rabbit_factory()
    spec = scratch.queue()
    await worker.declare(Topology(queues=(spec,)))
    started, finished = asyncio.Event(), asyncio.Event()

    async def slow(delivery: Delivery) -> None:
        started.set()
        await asyncio.sleep(0.3)
        await delivery.ack()
        finished.set()

    await worker.consume(spec.name, slow)
    await worker.publish("", spec.name, Message(b"job"))
    await asyncio.wait_for(started.wait(), 5)
    # When the worker is closed
    await worker.close()
    # Then the handler finished and acked before the channel closed: nothing is left to redeliver
    assert finished.is_set()
    assert await observer.message_count(spec.name) == 0


async def test_rabbit_close_gives_up_on_stuck_handlers_and_their_messages_return(
    rabbit_factory: RabbitFactory, scratch: Scratch
) -> None:
    # Given a handler that never finishes, and a 0.3 s bound on close
    worker = await rabbit_factory(close_timeout=0.3)
    observer = await rabbit_factory()
    spec = scratch.queue()
    await worker.declare(Topology(queues=(spec,)))
    started = asyncio.Event()

    async def stuck(delivery: Delivery) -> None:
        started.set()
        await asyncio.sleep(3600)

    await worker.consume(spec.name, stuck)
    await worker.publish("", spec.name, Message(b"job"))
    await asyncio.wait_for(started.wait(), 5)
    # When the worker is closed / Then close returns soon after the bound
    began = time.monotonic()
    await worker.close()
    assert time.monotonic() - began < 2.0
    # And the unacked message is back in the queue
    deadline = time.monotonic() + 5
    while await observer.message_count(spec.name) != 1:
        assert time.monotonic() < deadline, "the unacked message did not return to the queue"
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def _tls_front(target: str, certificate: Path, key: Path) -> AsyncIterator[int]:
    # A TLS endpoint on 127.0.0.1 relaying to RabbitMQ's plain port, as a TLS listener would be.
    parsed = urlsplit(target)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(certificate, key)

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
        finally:
            writer.close()

    relays: set[asyncio.Task[None]] = set()

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        relays.add(task)
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                parsed.hostname, parsed.port or 5672
            )
            await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
        finally:
            relays.discard(task)

    server = await asyncio.start_server(relay, "127.0.0.1", 0, ssl=tls)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in list(relays):
            task.cancel()
        await asyncio.gather(*relays, return_exceptions=True)


async def test_rabbit_works_over_tls_and_refuses_an_untrusted_certificate(
    rabbitmq_url: str, scratch: Scratch, tmp_path: Path
) -> None:
    # Given RabbitMQ behind TLS with a self-signed certificate, trusted through the URL's ssl_options
    certificate, key = _self_signed(tmp_path)
    parsed = urlsplit(rabbitmq_url)
    async with _tls_front(rabbitmq_url, certificate, key) as port:
        base = f"amqps://{parsed.username}:{parsed.password}@127.0.0.1:{port}{parsed.path}"
        trusting = RabbitBroker(
            f"{base}?ssl_options={quote(repr({'ca_certs': str(certificate)}))}",
            connection_name=f"lgsp-test-{scratch.run}-tls",
            close_timeout=2.0,
        )
        await trusting.connect()
        try:
            spec = scratch.queue()
            await trusting.declare(Topology(queues=(spec,)))

            async def echo(delivery: Delivery) -> None:
                await trusting.reply(delivery, Message(b"echo:" + delivery.message.body, persistent=False))
                await delivery.ack()

            await trusting.consume(spec.name, echo)
            # When a request goes through it
            reply = await trusting.request("", spec.name, Message(b"over tls"), timeout=10)
        finally:
            await trusting.close()
        # Then it is answered
        assert reply.body == b"echo:over tls"
        # And a client that does not trust the certificate is refused
        with pytest.raises(BrokerConnectionError):
            await RabbitBroker(base, reconnect_delays=FAST_RECONNECT, connect_timeout=2.0).connect()
