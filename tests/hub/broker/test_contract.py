"""The broker contract: every Broker implementation (embedded, RabbitMQ) behaves the same way."""

import asyncio
import time

import pytest

from hub.broker.base import Broker, Delivery, Message, Topology
from hub.errors import BrokerConnectionError, BrokerError, ReplyTimeout, UnroutableError
from tests.hub.broker.conftest import Scratch, eventually


async def _declare_queue(broker: Broker, scratch: Scratch, **options: object) -> str:
    spec = scratch.queue(**options)  # type: ignore[arg-type]
    await broker.declare(Topology(queues=(spec,)))
    return spec.name


async def test_broker_round_trip_preserves_properties_and_headers(broker: Broker, scratch: Scratch) -> None:
    # Given a queue bound to a topic exchange, and a consumer
    exchange = scratch.exchange()
    spec = scratch.queue(bindings=((exchange.name, "svc.*.v1"),))
    await broker.declare(Topology((exchange,), (spec,)))
    received: asyncio.Future[Delivery] = asyncio.get_running_loop().create_future()

    async def handler(delivery: Delivery) -> None:
        received.set_result(delivery)
        await delivery.ack()

    await broker.consume(spec.name, handler)
    sent = Message(
        body=b'{"id": "001099012345"}',
        content_type="application/json",
        message_id="m-1",
        correlation_id="c-1",
        headers={
            "x-client": "VN/GOV/000.00.00.H40/one-stop",
            "x-attempt": 2,
            "x-flag": True,
            "x-list": [1, "a"],
        },
        timestamp=1_700_000_000,
        type="citizen-lookup",
        persistent=True,
    )
    # When a message is published through the exchange
    await broker.publish(exchange.name, "svc.population.v1", sent)
    # Then the consumer gets it with every property and header intact
    delivery = await asyncio.wait_for(received, 5)
    assert delivery.message == sent
    assert (delivery.queue, delivery.exchange, delivery.routing_key) == (
        spec.name,
        exchange.name,
        "svc.population.v1",
    )
    assert delivery.redelivered is False


async def test_broker_ack_removes_message_for_good(broker: Broker, scratch: Scratch) -> None:
    # Given a message fetched and acked
    queue = await _declare_queue(broker, scratch)
    await broker.publish("", queue, Message(b"one"))
    delivery = await broker.get(queue)
    assert delivery is not None
    await delivery.ack()
    # Then the queue is empty, and a second ack is a harmless no-op
    assert delivery.settled
    await delivery.ack()
    assert await broker.get(queue) is None
    assert await broker.message_count(queue) == 0


async def test_broker_nack_requeue_redelivers_with_redelivered_flag(broker: Broker, scratch: Scratch) -> None:
    # Given a consumer that nacks (requeue) the first delivery and acks the next
    queue = await _declare_queue(broker, scratch)
    seen: list[tuple[bytes, bool]] = []

    async def handler(delivery: Delivery) -> None:
        seen.append((delivery.message.body, delivery.redelivered))
        if len(seen) == 1:
            await delivery.nack(requeue=True)
        else:
            await delivery.ack()

    await broker.consume(queue, handler)
    # When one message is published
    await broker.publish("", queue, Message(b"again"))
    # Then it comes back once more, flagged redelivered
    await eventually(lambda: len(seen) == 2, what="the redelivery")
    assert seen == [(b"again", False), (b"again", True)]


async def test_broker_nack_without_requeue_dead_letters_to_dlq(broker: Broker, scratch: Scratch) -> None:
    # Given a queue with a DLQ and a message fetched from it
    spec = scratch.queue(dead_letter=True)
    await broker.declare(Topology(queues=(spec,)))
    await broker.publish("", spec.name, Message(b"poison", message_id="p-1"))
    delivery = await broker.get(spec.name)
    assert delivery is not None
    # When it is nacked without requeue
    await delivery.nack(requeue=False)
    # Then it lands in the DLQ, not back in the queue
    dead = await _get_eventually(broker, spec.dlq_name)
    assert dead.message.body == b"poison"
    assert dead.message.message_id == "p-1"
    assert await broker.message_count(spec.name) == 0
    await dead.ack()


async def test_broker_handler_raising_requeues_once_then_dead_letters(
    broker: Broker, scratch: Scratch
) -> None:
    # Given a consumer whose handler always raises
    spec = scratch.queue(dead_letter=True)
    await broker.declare(Topology(queues=(spec,)))
    attempts: list[bool] = []

    async def handler(delivery: Delivery) -> None:
        attempts.append(delivery.redelivered)
        raise RuntimeError("backend exploded")

    await broker.consume(spec.name, handler)
    # When a message arrives
    await broker.publish("", spec.name, Message(b"doomed"))
    # Then it is tried twice (fresh, then redelivered) and dead-lettered
    dead = await _get_eventually(broker, spec.dlq_name)
    assert dead.message.body == b"doomed"
    assert attempts == [False, True]


async def test_broker_prefetch_bounds_unacked_in_flight(broker: Broker, scratch: Scratch) -> None:
    # Given a consumer with prefetch=3 that holds its deliveries without acking
    queue = await _declare_queue(broker, scratch)
    held: list[Delivery] = []

    async def handler(delivery: Delivery) -> None:
        held.append(delivery)

    for i in range(10):
        await broker.publish("", queue, Message(str(i).encode()))
    await broker.consume(queue, handler, prefetch=3)
    # Then only 3 arrive while none is acked
    await eventually(lambda: len(held) == 3, what="the first 3 deliveries")
    await asyncio.sleep(0.2)
    assert len(held) == 3
    # When two are acked, exactly two more arrive
    for delivery in held[:2]:
        await delivery.ack()
    await eventually(lambda: len(held) == 5, what="two more deliveries")
    await asyncio.sleep(0.2)
    assert len(held) == 5
    assert [d.message.body for d in held] == [b"0", b"1", b"2", b"3", b"4"]


async def test_broker_cancelled_consumer_requeues_its_unacked(broker: Broker, scratch: Scratch) -> None:
    # Given a consumer holding two unacked messages
    queue = await _declare_queue(broker, scratch)
    held: list[Delivery] = []

    async def hold(delivery: Delivery) -> None:
        held.append(delivery)

    consumer = await broker.consume(queue, hold)
    await broker.publish("", queue, Message(b"a"))
    await broker.publish("", queue, Message(b"b"))
    await eventually(lambda: len(held) == 2, what="two deliveries")
    # When it is cancelled
    await consumer.cancel()
    # Then the messages are back, flagged redelivered, and acking the old deliveries changes nothing
    await held[0].ack()
    again = [await _get_eventually(broker, queue), await _get_eventually(broker, queue)]
    assert sorted(d.message.body for d in again) == [b"a", b"b"]
    assert all(d.redelivered for d in again)


async def test_broker_mandatory_unroutable_raises_unroutable_error(broker: Broker, scratch: Scratch) -> None:
    # Given an exchange with no queue bound
    exchange = scratch.exchange()
    await broker.declare(Topology(exchanges=(exchange,)))
    # When a mandatory publish matches nothing / Then it is an error naming the exchange and key
    with pytest.raises(UnroutableError) as caught:
        await broker.publish(exchange.name, "nobody.home", Message(b"lost?"))
    assert (caught.value.exchange, caught.value.routing_key) == (exchange.name, "nobody.home")
    # And a non-mandatory one is dropped without error
    await broker.publish(exchange.name, "nobody.home", Message(b"dropped"), mandatory=False)


async def test_broker_unroutable_publish_fails_alone_among_concurrent_ones(
    broker: Broker, scratch: Scratch
) -> None:
    # Given a queue, and an exchange with nothing bound
    queue = await _declare_queue(broker, scratch)
    exchange = scratch.exchange()
    await broker.declare(Topology(exchanges=(exchange,)))
    # When routable and unroutable publishes are in flight together
    publishes = [
        broker.publish(exchange.name, "void", Message(b"x%d" % i))
        if i % 10 == 3
        else broker.publish("", queue, Message(b"ok"))
        for i in range(100)
    ]
    results = await asyncio.gather(*publishes, return_exceptions=True)
    # Then exactly the unroutable ones fail, each with UnroutableError
    failed = [i for i, r in enumerate(results) if r is not None]
    assert failed == [i for i in range(100) if i % 10 == 3]
    assert all(isinstance(results[i], UnroutableError) for i in failed)
    assert await broker.message_count(queue) == 90


async def test_broker_publish_many_reports_each_message_and_a_failure_stops_no_other(
    broker: Broker, scratch: Scratch
) -> None:
    # Given two queues bound to a topic exchange by routing key, and nothing bound for "void"
    exchange = scratch.exchange()
    pull = scratch.queue(bindings=((exchange.name, "pull"),))
    push = scratch.queue(bindings=((exchange.name, "push"),))
    await broker.declare(Topology((exchange,), (pull, push)))

    # When routable and unroutable messages are published together, in one call
    keys = ["pull", "void", "push", "pull", "void", "push"]
    outcomes = await broker.publish_many(
        exchange.name, [(key, Message(b"m%d" % i)) for i, key in enumerate(keys)]
    )

    # Then each message has its own outcome, in order: the unroutable ones fail alone
    assert [type(o).__name__ if o is not None else None for o in outcomes] == [
        None,
        "UnroutableError",
        None,
        None,
        "UnroutableError",
        None,
    ]
    assert all(o.routing_key == "void" for o in outcomes if isinstance(o, UnroutableError))
    assert await broker.message_count(pull.name) == 2 and await broker.message_count(push.name) == 2
    first = await _get_eventually(broker, pull.name)
    assert first.message.body == b"m0"
    await first.ack()

    # And with nothing to publish, nothing happens
    assert await broker.publish_many(exchange.name, []) == []


async def test_broker_publish_many_after_close_fails_every_message_with_a_connection_error(
    broker: Broker, scratch: Scratch
) -> None:
    queue = await _declare_queue(broker, scratch)
    await broker.close()
    outcomes = await broker.publish_many("", [(queue, Message(b"a")), (queue, Message(b"b"))])
    assert len(outcomes) == 2 and all(isinstance(o, BrokerConnectionError) for o in outcomes)


async def test_broker_publish_to_missing_exchange_fails_and_broker_stays_usable(
    broker: Broker, scratch: Scratch
) -> None:
    queue = await _declare_queue(broker, scratch)
    # When publishing to an exchange that does not exist / Then it is a broker error
    with pytest.raises(BrokerError):
        await broker.publish(scratch.name("missing"), "key", Message(b"x"))
    # And the broker still publishes elsewhere
    await broker.publish("", queue, Message(b"fine"))
    assert await broker.message_count(queue) == 1


async def test_broker_retry_queue_returns_message_after_its_ttl(broker: Broker, scratch: Scratch) -> None:
    # Given a queue with a 200 ms retry queue, and a consumer
    spec = scratch.queue(retry_delays_ms=(200,))
    await broker.declare(Topology(queues=(spec,)))
    arrived: asyncio.Future[tuple[float, Delivery]] = asyncio.get_running_loop().create_future()

    async def handler(delivery: Delivery) -> None:
        arrived.set_result((time.monotonic(), delivery))
        await delivery.ack()

    await broker.consume(spec.name, handler)
    # When a message is parked for 200 ms
    started = time.monotonic()
    await broker.retry_later(spec, Message(b"later", message_id="r-1"), 200)
    # Then it comes back to the queue after (not before) its TTL
    at, delivery = await asyncio.wait_for(arrived, 5)
    assert 0.18 <= at - started < 3.0
    assert delivery.message.message_id == "r-1"
    with pytest.raises(ValueError):
        await broker.retry_later(spec, Message(b"x"), 999)


async def _serve_echo(broker: Broker, queue: str) -> None:
    async def echo(delivery: Delivery) -> None:
        body = delivery.message.body.upper()
        await broker.reply(delivery, Message(body, headers={"x-served-by": queue}))
        await delivery.ack()

    await broker.consume(queue, echo)


async def test_broker_request_reply_round_trip(broker: Broker, scratch: Scratch) -> None:
    # Given a responder on a service queue bound to a request exchange
    exchange = scratch.exchange()
    spec = scratch.queue(bindings=((exchange.name, "svc.echo"),))
    await broker.declare(Topology((exchange,), (spec,)))
    await _serve_echo(broker, spec.name)
    # When a request is sent with a correlation id
    reply = await broker.request(
        exchange.name, "svc.echo", Message(b"ping", correlation_id="corr-7"), timeout=5
    )
    # Then the reply carries the answer, the responder's headers and the same correlation id
    assert reply.body == b"PING"
    assert reply.headers["x-served-by"] == spec.name
    assert reply.correlation_id == "corr-7"


async def test_broker_request_without_responder_times_out(broker: Broker, scratch: Scratch) -> None:
    # Given a queue nobody consumes
    queue = await _declare_queue(broker, scratch)
    # When a request is sent with a short timeout / Then it raises ReplyTimeout carrying the timeout
    started = time.monotonic()
    with pytest.raises(ReplyTimeout) as caught:
        await broker.request("", queue, Message(b"anyone?"), timeout=0.2)
    assert caught.value.timeout == 0.2
    assert 0.15 <= time.monotonic() - started < 2.0


async def test_broker_request_unroutable_raises_unroutable_error(broker: Broker, scratch: Scratch) -> None:
    with pytest.raises(UnroutableError):
        await broker.request("", scratch.name("nobody"), Message(b"x"), timeout=2)


async def test_broker_200_concurrent_requests_each_get_their_own_reply(
    broker: Broker, scratch: Scratch
) -> None:
    # Given a responder
    queue = await _declare_queue(broker, scratch)
    await _serve_echo(broker, queue)
    # When 200 requests are in flight at once
    replies = await asyncio.gather(
        *(broker.request("", queue, Message(b"req-%d" % i), timeout=10) for i in range(200))
    )
    # Then every caller gets the answer to its own request
    assert [r.body for r in replies] == [b"REQ-%d" % i for i in range(200)]


async def test_broker_get_message_count_and_purge(broker: Broker, scratch: Scratch) -> None:
    # Given an empty queue
    queue = await _declare_queue(broker, scratch)
    assert await broker.get(queue) is None
    # When three messages are published
    for body in (b"1", b"2", b"3"):
        await broker.publish("", queue, Message(body))
    # Then they are counted, fetched in order, and a nacked one comes back redelivered
    assert await broker.message_count(queue) == 3
    first = await broker.get(queue)
    assert first is not None and first.message.body == b"1" and not first.redelivered
    assert await broker.message_count(queue) == 2
    await first.nack(requeue=True)
    again = await _get_eventually(broker, queue)
    assert again.message.body == b"1" and again.redelivered
    await again.ack()
    # And purge drops the rest
    await broker.purge(queue)
    assert await broker.message_count(queue) == 0
    assert await broker.get(queue) is None


async def test_broker_message_count_of_missing_queue_is_an_error(broker: Broker, scratch: Scratch) -> None:
    with pytest.raises(BrokerError):
        await broker.message_count(scratch.name("missing"))
    # And the broker is still usable afterwards
    queue = await _declare_queue(broker, scratch)
    assert await broker.message_count(queue) == 0


async def test_broker_declare_is_idempotent(broker: Broker, scratch: Scratch) -> None:
    # Given a full topology with a message waiting in it
    exchange = scratch.exchange()
    spec = scratch.queue(bindings=((exchange.name, "a.#"),), dead_letter=True, retry_delays_ms=(200, 1000))
    topology = Topology((exchange,), (spec,))
    await broker.declare(topology)
    await broker.publish(exchange.name, "a.b", Message(b"kept"))
    # When the same topology is declared again
    await broker.declare(topology)
    await broker.declare(topology.merge(topology))
    # Then nothing changed: the message is still there and routing still works
    assert await broker.message_count(spec.name) == 1
    await broker.publish(exchange.name, "a.c", Message(b"more"))
    assert await broker.message_count(spec.name) == 2


async def test_broker_close_makes_it_unhealthy_and_refuses_publishes(
    broker: Broker, scratch: Scratch
) -> None:
    queue = await _declare_queue(broker, scratch)
    assert await broker.healthy()
    # When closed
    await broker.close()
    # Then it is unhealthy and publishing fails with a connection error; close is idempotent
    assert not await broker.healthy()
    with pytest.raises(BrokerConnectionError):
        await broker.publish("", queue, Message(b"x"))
    await broker.close()


async def _get_eventually(broker: Broker, queue: str, timeout: float = 5.0) -> Delivery:
    deadline = time.monotonic() + timeout
    while True:
        delivery = await broker.get(queue)
        if delivery is not None:
            return delivery
        if time.monotonic() > deadline:
            pytest.fail(f"nothing arrived in {queue!r} within {timeout:g} s")
        await asyncio.sleep(0.02)
