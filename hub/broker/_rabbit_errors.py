"""pika's exceptions translated into the hub's broker errors, from one table.

Everything pika raises or reports reaches the rest of the hub through `translate` (for reasons
handed to callbacks) or `pika_errors` (around synchronous pika calls), with the pika exception kept
as `__cause__`.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import pika.exceptions as pe
from pika.adapters.utils import connection_workflow as cw

from hub.errors import BrokerConnectionError, BrokerError

# First match wins: the connection and channel states first, then the catch-alls.
_TABLE: tuple[tuple[type[BaseException], type[BrokerError], str], ...] = (
    (pe.ProbableAuthenticationError, BrokerConnectionError, "RabbitMQ refused the credentials"),
    (pe.AuthenticationError, BrokerConnectionError, "RabbitMQ refused the credentials"),
    (pe.ProbableAccessDeniedError, BrokerConnectionError, "RabbitMQ refused access to the vhost"),
    (pe.ConnectionClosed, BrokerConnectionError, "the RabbitMQ connection was closed"),
    (pe.StreamLostError, BrokerConnectionError, "the RabbitMQ connection was lost"),
    (pe.AMQPHeartbeatTimeout, BrokerConnectionError, "RabbitMQ missed its heartbeats"),
    (pe.ConnectionBlockedTimeout, BrokerConnectionError, "RabbitMQ blocked the connection too long"),
    (pe.AMQPConnectionError, BrokerConnectionError, "the RabbitMQ connection is unusable"),
    (cw.AMQPConnectorException, BrokerConnectionError, "RabbitMQ cannot be reached"),
    (pe.ChannelClosedByBroker, BrokerError, "RabbitMQ closed the channel"),
    (pe.ChannelClosed, BrokerConnectionError, "the channel is closed"),
    (pe.ChannelWrongStateError, BrokerConnectionError, "the channel is closed"),
    (pe.UnsupportedAMQPFieldException, BrokerError, "a header value has a type AMQP cannot carry"),
    (pe.AMQPError, BrokerError, "RabbitMQ refused the operation"),
    (OSError, BrokerConnectionError, "RabbitMQ cannot be reached"),
)


def translate(exc: BaseException | None, context: str = "") -> BrokerError:
    """The hub error for a pika exception (or for None: a closed connection), cause attached."""
    if isinstance(exc, BrokerError):
        return exc
    ours, text = next(
        ((kind, text) for foreign, kind, text in _TABLE if isinstance(exc, foreign)),
        (BrokerConnectionError, "the RabbitMQ connection is unusable"),
    )
    detail = _detail(exc)
    message = f"{context}: {text}" if context else text
    error = ours(f"{message} ({detail})" if detail else message)
    error.__cause__ = exc
    return error


def reply_code(error: BaseException) -> int | None:
    """The AMQP reply code behind a translated error (404 not found, 406 precondition, ...)."""
    cause = error.__cause__
    if isinstance(cause, pe.ChannelClosed | pe.ConnectionClosed):
        return int(cause.reply_code)
    return None


@contextmanager
def pika_errors(context: str = "") -> Iterator[None]:
    """Translate what a synchronous pika call raises."""
    try:
        yield
    except (pe.AMQPError, cw.AMQPConnectorException, OSError) as exc:
        raise translate(exc, context) from exc


def _detail(exc: BaseException | None) -> str:
    if isinstance(exc, pe.ChannelClosed | pe.ConnectionClosed):
        return f"{exc.reply_code} {exc.reply_text}"
    if exc is None:
        return ""
    return repr(exc)
