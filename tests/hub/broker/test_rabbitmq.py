"""RabbitBroker under failure: connections cut under it, workers killed mid-message, bad arguments."""

import asyncio
import collections
import time

import pytest

from hub.broker.base import Delivery, Message, Topology
from hub.broker.rabbitmq import RabbitBroker
from hub.errors import BrokerConnectionError, BrokerError, ConfigError
from tests.hub.broker.conftest import RabbitFactory, Scratch, eventually, force_close

pytestmark = pytest.mark.rabbitmq

FAST_RECONNECT = (0.05, 0.1, 0.2)


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
        found = await force_close(broker.test_name)  # type: ignore[attr-defined]
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


async def test_rabbit_publishes_in_flight_at_a_drop_confirm_or_fail_never_hang(
    rabbit_factory: RabbitFactory, scratch: Scratch
) -> None:
    # Given a steady stream of publishes, up to 200 in flight
    broker = await rabbit_factory(reconnect_delays=FAST_RECONNECT, reconnect_wait=5.0)
    spec = scratch.queue()
    await broker.declare(Topology(queues=(spec,)))
    publishes: list[asyncio.Task[None]] = []
    window = asyncio.Semaphore(200)
    cut_done = asyncio.Event()

    async def one() -> None:
        try:
            await broker.publish("", spec.name, Message(b"x" * 1024))
        finally:
            window.release()

    async def stream() -> None:
        while not cut_done.is_set():
            await window.acquire()
            publishes.append(asyncio.create_task(one()))

    streaming = asyncio.create_task(stream())
    # When the connection is cut while they are in flight
    await asyncio.sleep(0.1)
    await force_close(broker.test_name)  # type: ignore[attr-defined]
    cut_done.set()
    await streaming
    done, pending = await asyncio.wait(publishes, timeout=15)
    # Then each one settled: confirmed, or failed with BrokerConnectionError (never silently, never stuck)
    assert not pending
    errors = [t.exception() for t in done if t.exception() is not None]
    assert all(isinstance(e, BrokerConnectionError) for e in errors), {type(e) for e in errors}
    assert errors, "the cut landed when no publish was in flight"
    assert await broker.message_count(spec.name) >= len(publishes) - len(errors)


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
    await force_close(broker.test_name)  # type: ignore[attr-defined]
    # Then messages published afterwards reach the same consumer
    await broker.publish("", spec.name, Message(b"after"))
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
    await force_close(broker.test_name)  # type: ignore[attr-defined]
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
    await force_close(broker.test_name)  # type: ignore[attr-defined]
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
    await force_close(broker.test_name)  # type: ignore[attr-defined]
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
