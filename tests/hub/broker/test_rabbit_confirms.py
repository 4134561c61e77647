"""ConfirmTracker: broker acks, nacks and returns settle exactly the right publishes."""

import asyncio

import pytest
from pika import frame, spec

from hub.broker._rabbit_confirms import ConfirmTracker
from hub.errors import BrokerConnectionError, BrokerError, PublishNackedError, UnroutableError


def _ack(tag: int, multiple: bool = False) -> frame.Method:
    return frame.Method(1, spec.Basic.Ack(delivery_tag=tag, multiple=multiple))


def _nack(tag: int, multiple: bool = False) -> frame.Method:
    return frame.Method(1, spec.Basic.Nack(delivery_tag=tag, multiple=multiple))


def _publish(tracker: ConfirmTracker, routing_key: str, body: bytes = b"x") -> "asyncio.Future[None]":
    return tracker.expect("ex", routing_key, spec.BasicProperties(message_id="m"), body, True)


async def test_confirms_multiple_ack_settles_every_tag_up_to_it() -> None:
    # Given five publishes in flight
    tracker = ConfirmTracker()
    futures = [_publish(tracker, f"k{i}") for i in range(5)]
    # When the broker acks 1..3 at once, then 5 alone
    tracker.on_confirm(_ack(3, multiple=True))
    tracker.on_confirm(_ack(5))
    # Then 1-3 and 5 are confirmed, 4 still waits
    assert [f.done() for f in futures] == [True, True, True, False, True]
    assert all(f.result() is None for f in futures if f.done())
    assert len(tracker) == 1


async def test_confirms_nack_fails_only_the_nacked_publishes() -> None:
    tracker = ConfirmTracker()
    futures = [_publish(tracker, f"k{i}") for i in range(4)]
    # When 2 is nacked alone, then 1..4 acked/nacked in two multiple frames
    tracker.on_confirm(_nack(2))
    tracker.on_confirm(_ack(1, multiple=True))
    tracker.on_confirm(_nack(4, multiple=True))
    # Then 1 is confirmed, 2 and 3 and 4 are refused
    assert futures[0].result() is None
    for future in futures[1:]:
        with pytest.raises(PublishNackedError):
            future.result()


async def test_confirms_return_fails_the_matching_publish_before_its_ack() -> None:
    # Given two publishes to the same key with different bodies, the second unroutable
    tracker = ConfirmTracker()
    routed, returned = _publish(tracker, "k", b"one"), _publish(tracker, "k", b"two")
    # When the broker returns the second, then acks both
    method = spec.Basic.Return(reply_code=312, reply_text="NO_ROUTE", exchange="ex", routing_key="k")
    tracker.on_return(None, method, spec.BasicProperties(message_id="m"), b"two")
    tracker.on_confirm(_ack(2, multiple=True))
    # Then only the returned one fails, with UnroutableError naming the exchange and key
    assert routed.result() is None
    with pytest.raises(UnroutableError) as caught:
        returned.result()
    assert (caught.value.exchange, caught.value.routing_key) == ("ex", "k")


async def test_confirms_fail_all_fails_in_flight_with_connection_error() -> None:
    tracker = ConfirmTracker()
    done, pending = _publish(tracker, "a"), _publish(tracker, "b")
    tracker.on_confirm(_ack(1))
    # When the channel goes away
    tracker.fail_all(BrokerError("channel closed"))
    # Then the unconfirmed publish fails with a retryable error; the confirmed one is untouched
    assert done.result() is None
    with pytest.raises(BrokerConnectionError):
        pending.result()
    assert len(tracker) == 0


async def test_confirms_ignores_acks_for_cancelled_or_unknown_publishes() -> None:
    tracker = ConfirmTracker()
    abandoned = _publish(tracker, "a")
    abandoned.cancel()
    tracker.on_confirm(_ack(1))
    tracker.on_confirm(_ack(42))
    assert len(tracker) == 0
