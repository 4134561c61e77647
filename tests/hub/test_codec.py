"""The one codec between Envelope / Reply and AMQP messages."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from hub.broker import Message
from hub.codec import envelope_to_message, message_to_envelope, message_to_reply, reply_to_message
from hub.envelope import Envelope, Reply
from hub.errors import EnvelopeError
from hub.identifiers import ServiceId


def sample() -> Envelope:
    created = datetime(2026, 11, 22, 8, 30, tzinfo=UTC)
    return Envelope(
        message_id="m-1",
        correlation_id="c-1",
        client="VN/GOV/000.00.00.H40/one-stop",
        service=ServiceId.parse("VN/GOV/000.00.00.G06/population/citizen-lookup/v1"),
        operation="citizen-lookup",
        body="Nguyễn Văn An".encode(),
        content_type="application/json",
        method="POST",
        path="a/b",
        query=(("x", "1"), ("x", "2")),
        headers={"x-trace": "t"},
        user_id="VN001096001005",
        created_at=created,
        deadline=created + timedelta(seconds=30),
        trace=("gateway:h:1",),
    )


def test_envelope_round_trips_through_an_amqp_message() -> None:
    envelope = sample()
    message = envelope_to_message(envelope)
    assert message.persistent and message.message_id == "m-1" and message.correlation_id == "c-1"
    assert message_to_envelope(message) == envelope


def test_reply_round_trips_including_error_type() -> None:
    reply = Reply(
        message_id="m-1",
        status=504,
        body=b"{}",
        headers={"x-a": "b"},
        error_type="Server.ServerProxy.BackendTimeout",
        trace=("w",),
    )
    assert message_to_reply(reply_to_message(reply)) == reply


@pytest.mark.parametrize(
    ("mangle", "words"),
    [
        (lambda m: replace(m, message_id=None), "message_id"),
        (lambda m: m.with_headers(**{"lgsp-service": "VN/GOV"}), "lgsp-service"),
        (
            lambda m: replace(m, headers={k: v for k, v in m.headers.items() if k != "lgsp-client"}),
            "lgsp-client",
        ),
        (lambda m: m.with_headers(**{"lgsp-created-at": "yesterday"}), "lgsp-created-at"),
        (lambda m: m.with_headers(**{"lgsp-http-headers": "not a table"}), "lgsp-http-headers"),
    ],
)
def test_message_to_envelope_names_what_is_wrong(mangle, words: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(EnvelopeError, match=words):
        message_to_envelope(mangle(envelope_to_message(sample())))


def test_message_to_reply_requires_a_status() -> None:
    with pytest.raises(EnvelopeError, match="lgsp-status"):
        message_to_reply(Message(body=b""))


def test_envelope_expired_compares_with_its_deadline() -> None:
    envelope = sample()
    assert not envelope.expired(envelope.created_at)
    assert envelope.expired(envelope.created_at + timedelta(seconds=31))
