"""A consumer channel's acks coalesced per loop turn: one multiple ack only over contiguous settled
deliveries, nacks alone and in order, nothing lost when the channel closes with acks held."""

import asyncio
import logging
import random
from typing import Any, cast

import pytest

from hub.broker._rabbit_channel import AsyncChannel
from hub.broker._rabbit_connection import LoopConnection
from hub.broker._rabbit_consumer import ChannelAcks, RabbitConsumer
from hub.broker.base import Delivery, Message, Topology
from tests.hub.broker.conftest import RabbitFactory, Scratch, cut_socket, eventually

Frame = tuple[Any, ...]


class _Raw:
    """The part of a pika channel that settles deliveries, recording the frames it would send."""

    def __init__(self, frames: list[Frame]) -> None:
        self.frames = frames
        self.is_open = True

    def basic_ack(self, delivery_tag: int, multiple: bool = False) -> None:
        self.frames.append(("ack", delivery_tag, multiple))

    def basic_nack(self, delivery_tag: int, multiple: bool = False, requeue: bool = True) -> None:
        assert not multiple
        self.frames.append(("nack", delivery_tag, requeue))

    def basic_cancel(self, consumer_tag: str, callback: Any = None) -> None:
        self.frames.append(("cancel", consumer_tag))


class _Channel:
    """An AsyncChannel stand-in over `_Raw`; closing it is a frame too."""

    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self.raw = _Raw(self.frames)
        self.loop = asyncio.get_running_loop()

    @property
    def is_open(self) -> bool:
        return self.raw.is_open

    def flush(self) -> None:
        pass

    def at_end_of_turn(self, callback: Any) -> None:
        self.loop.call_soon(callback)

    async def call(self, method: Any, *args: Any) -> None:
        method(*args)

    async def close(self) -> None:
        self.frames.append(("close",))
        self.raw.is_open = False


def _acks(tags: int) -> tuple[ChannelAcks, _Channel]:
    channel = _Channel()
    acks = ChannelAcks(cast(AsyncChannel, channel), "q")
    for tag in range(1, tags + 1):
        acks.delivered(tag)
    return acks, channel


async def _next_turn() -> None:
    await asyncio.sleep(0)


class _BrokerModel:
    """What RabbitMQ holds unacked on the channel, checking each frame against what handlers asked."""

    def __init__(self) -> None:
        self.unacked: set[int] = set()
        self.asked: dict[int, str] = {}  # tag -> "ack" / "nack", as the handler settled it

    def apply(self, frame: Frame) -> None:
        verb, tag = frame[0], frame[1]
        if verb == "ack" and frame[2]:
            covered = {t for t in self.unacked if t <= tag}
            assert tag in covered, f"multiple ack {tag} of a tag not unacked"
            for t in covered:
                assert self.asked.get(t) == "ack", f"multiple ack {tag} covers {t}, {self.asked.get(t)}"
            self.unacked -= covered
        else:
            assert tag in self.unacked, f"{verb} of a tag not unacked: {tag}"
            assert self.asked.get(tag) == verb, f"{verb} {tag} but the handler asked {self.asked.get(tag)}"
            self.unacked.discard(tag)


async def test_acks_of_one_turn_go_out_as_the_first_then_one_multiple_ack() -> None:
    # Given five deliveries in work
    acks, channel = _acks(5)
    # When all five are acked in one loop turn
    for tag in range(1, 6):
        assert acks.ack(tag, f"m{tag}")
    # Then the first goes at once, the other four at the end of the turn as one multiple ack
    assert channel.frames == [("ack", 1, False)]
    await _next_turn()
    assert channel.frames == [("ack", 1, False), ("ack", 5, True)]


class _Transport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return False


def _loop_connection() -> tuple[LoopConnection, _Transport]:
    # Only the frame-holding part of a LoopConnection, over a transport that records its writes.
    connection = LoopConnection.__new__(LoopConnection)
    transport = _Transport()
    connection.__dict__.update(
        _held=[],
        _before_write=[],
        _turn_open=False,
        _flushed=False,
        _event_loop=asyncio.get_running_loop(),
        _transport=transport,
        bytes_sent=0,
        frames_sent=0,
    )
    return connection, transport


async def test_acks_held_to_the_end_of_a_turn_leave_in_the_turns_one_write() -> None:
    # Given a connection holding a reply frame sent this turn, and acks to send at the end of the turn
    connection, transport = _loop_connection()
    connection._output_marshaled_frames([b"reply;"])
    connection.at_end_of_turn(lambda: connection._output_marshaled_frames([b"ack-multiple;"]))
    assert transport.writes == []

    # When the turn ends
    await _next_turn()
    await _next_turn()

    # Then the reply and the acks went out together, in one write, and nothing is left held
    assert transport.writes == [b"reply;ack-multiple;"]
    assert connection._held == [] and not connection._turn_open


async def test_acks_held_on_a_quiet_connection_still_go_out_at_the_end_of_the_turn() -> None:
    # Given a connection that sent nothing this turn
    connection, transport = _loop_connection()

    # When acks are held for the end of the turn
    connection.at_end_of_turn(lambda: connection._output_marshaled_frames([b"ack;"]))
    await _next_turn()
    await _next_turn()

    # Then the turn's end is scheduled for them and they leave in one write
    assert transport.writes == [b"ack;"]


async def test_acks_past_a_delivery_in_work_go_out_one_by_one() -> None:
    # Given six deliveries, 3 and 5 still in work
    acks, channel = _acks(6)
    # When 1, 2, 4 and 6 are acked in one turn
    for tag in (1, 2, 4, 6):
        acks.ack(tag, None)
    await _next_turn()
    # Then no ack covers 3 or 5: 2 alone (a run of one), 4 and 6 alone
    assert channel.frames == [("ack", 1, False), ("ack", 2, False), ("ack", 4, False), ("ack", 6, False)]
    # And when 5 then 3 are acked in the next turn, each goes alone too
    channel.frames.clear()
    acks.ack(5, None)
    acks.ack(3, None)
    await _next_turn()
    assert channel.frames == [("ack", 5, False), ("ack", 3, False)]


async def test_acks_a_nack_in_the_middle_goes_alone_after_the_acks_asked_before_it() -> None:
    # Given five deliveries
    acks, channel = _acks(5)
    # When, in one turn, 1 and 2 are acked, 3 nacked, 4 and 5 acked
    acks.ack(1, None)
    acks.ack(2, None)
    assert acks.nack(3, requeue=True)
    acks.ack(4, None)
    acks.ack(5, None)
    await _next_turn()
    # Then the acks before the nack go first, the nack alone, and the run after it as one ack
    assert channel.frames == [("ack", 1, False), ("ack", 2, False), ("nack", 3, True), ("ack", 5, True)]


async def test_acks_held_when_the_channel_closes_are_dropped_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given three deliveries acked in one turn: the first sent, two held to the end of the turn
    acks, channel = _acks(3)
    for tag in (1, 2, 3):
        acks.ack(tag, f"m{tag}")
    # When the channel closes under them before the turn ends
    channel.raw.is_open = False
    with caplog.at_level(logging.WARNING, logger="hub.broker._rabbit_consumer"):
        await _next_turn()
    # Then nothing more is sent (RabbitMQ redelivers them), each drop is logged, and later acks fail
    assert channel.frames == [("ack", 1, False)]
    assert "'m2'" in caplog.text and "'m3'" in caplog.text
    assert not acks.ack(4, "m4")
    assert not acks.nack(4, requeue=True)


async def test_acks_a_tag_never_announced_is_acked_alone() -> None:
    # Given a channel with nothing announced (a basic.get delivery)
    acks, channel = _acks(0)
    # When two tags are acked in one turn
    acks.ack(7, None)
    acks.ack(8, None)
    await _next_turn()
    # Then each goes alone: no run is assumed over deliveries it does not know
    assert channel.frames == [("ack", 7, False), ("ack", 8, False)]


async def test_acks_in_random_order_over_random_turns_never_settle_what_was_not_asked() -> None:
    for seed in range(200):
        rng = random.Random(seed)
        acks, channel = _acks(0)
        broker = _BrokerModel()
        tag, in_work = 0, []
        for _ in range(rng.randint(5, 40)):
            # A turn: some deliveries arrive, some of those in work are settled, in any order
            for _ in range(rng.randint(0, 8)):
                tag += 1
                acks.delivered(tag)
                broker.unacked.add(tag)
                in_work.append(tag)
            rng.shuffle(in_work)
            for _ in range(rng.randint(0, len(in_work))):
                settled = in_work.pop()
                if rng.random() < 0.15:
                    broker.asked[settled] = "nack"
                    acks.nack(settled, requeue=True)
                else:
                    broker.asked[settled] = "ack"
                    acks.ack(settled, None)
            await _next_turn()
            for frame in channel.frames:
                broker.apply(frame)
            channel.frames.clear()
        # Then every settlement reached the broker, and only those
        assert broker.unacked == set(in_work), f"seed {seed}"


async def test_consumer_cancel_sends_acks_held_before_closing_its_channel() -> None:
    # Given a consumer whose channel holds two acks to the end of the turn
    consumer = RabbitConsumer(
        "q",
        lambda d: asyncio.sleep(0),
        8,
        grace=1.0,
        on_cancel=lambda c: None,
        on_channel_lost=lambda c: None,
    )
    acks, channel = _acks(3)
    consumer._channel, consumer._acks = cast(AsyncChannel, channel), acks
    for tag in (1, 2, 3):
        acks.ack(tag, None)
    # When it is cancelled within that turn
    await consumer.cancel()
    # Then the held acks go out before the channel closes (else RabbitMQ would requeue them)
    assert channel.frames == [("ack", 1, False), ("cancel", ""), ("ack", 3, True), ("close",)]


def _spy_acks(consumer: object, sent: list[tuple[int, bool]]) -> None:
    raw = cast(RabbitConsumer, consumer)._acks.channel.raw  # type: ignore[union-attr]
    basic_ack = raw.basic_ack

    def recording(delivery_tag: int, multiple: bool = False) -> None:
        sent.append((delivery_tag, multiple))
        basic_ack(delivery_tag, multiple=multiple)

    raw.basic_ack = recording  # type: ignore[method-assign]


@pytest.mark.rabbitmq
async def test_rabbit_acks_and_nacks_in_any_order_settle_each_message_as_asked(
    rabbit_factory: RabbitFactory, scratch: Scratch
) -> None:
    # Given 300 messages, a sixth of them nacked (requeued) the first time they come
    broker = await rabbit_factory()
    spec = scratch.queue()
    await broker.declare(Topology(queues=(spec,)))
    for n in range(300):
        await broker.publish("", spec.name, Message(str(n).encode(), message_id=str(n)))
    seen: dict[str, list[bool]] = {}
    rng = random.Random(8)
    # The first twelve finish together, in one loop turn, whatever the machine's load: their acks are
    # coalesced for sure; the rest finish in any order.
    gate, waiting = asyncio.Event(), 0

    async def handler(delivery: Delivery) -> None:
        nonlocal waiting
        key = delivery.message.message_id or ""
        seen.setdefault(key, []).append(delivery.redelivered)
        if int(key) < 12 and not delivery.redelivered:
            waiting += 1
            if waiting == 12:
                gate.set()
            await gate.wait()
        else:
            await asyncio.sleep(rng.random() * 0.02)  # handlers finish in any order, many per turn
        if int(key) % 6 == 0 and not delivery.redelivered:
            await delivery.nack(requeue=True)
        else:
            await delivery.ack()

    # When one consumer with 50 in flight works through them
    consumer = await broker.consume(spec.name, handler, prefetch=50)
    sent: list[tuple[int, bool]] = []
    _spy_acks(consumer, sent)
    expected = {str(n): [False, True] if n % 6 == 0 else [False] for n in range(300)}
    await eventually(lambda: seen == expected, timeout=20, what="every message settled as asked")
    # Then acks were coalesced, and once the consumer is gone nothing comes back: every ack arrived
    assert any(multiple for _, multiple in sent)
    await consumer.cancel()
    await asyncio.sleep(0.2)
    assert await broker.message_count(spec.name) == 0
    assert seen == expected


@pytest.mark.rabbitmq
async def test_rabbit_connection_dropped_with_acks_held_their_messages_come_back(
    rabbit_factory: RabbitFactory, scratch: Scratch
) -> None:
    # Given ten messages held by a consumer
    broker = await rabbit_factory(reconnect_delays=(0.05, 0.1, 0.2))
    spec = scratch.queue()
    await broker.declare(Topology(queues=(spec,)))
    held: list[Delivery] = []
    redelivered: list[str] = []

    async def handler(delivery: Delivery) -> None:
        if delivery.redelivered:
            redelivered.append(delivery.message.message_id or "")
            await delivery.ack()
        else:
            held.append(delivery)

    await broker.consume(spec.name, handler, prefetch=20)
    for n in range(10):
        await broker.publish("", spec.name, Message(b"job", message_id=f"m{n}"))
    await eventually(lambda: len(held) == 10, what="ten deliveries")
    # When all ten are acked in one turn and the connection drops before that turn ends
    for delivery in held:
        await delivery.ack()
    cut_socket(broker)
    # Then the nine acks held to the end of the turn were never sent: those messages come back
    await eventually(lambda: len(redelivered) >= 9, timeout=10, what="the held acks' messages back")
    assert set(redelivered) >= {f"m{n}" for n in range(1, 10)}
    await asyncio.sleep(0.2)
    assert await broker.message_count(spec.name) == 0
