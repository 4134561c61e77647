"""The seam's Topology declared on RabbitMQ, idempotently.

Every exchange and queue is durable. A queue with `dead_letter` dead-letters through the direct
exchange `lgsp.dlx` with its own name as routing key, into `<queue>.dlq`. Each delayed-retry queue
`<queue>.retry.<ms>` holds messages for its TTL, then dead-letters them back to the queue through
the default exchange. Classic queues by default; quorum queues when asked (three-node clusters).
Re-declaring with the same arguments is a no-op; different arguments are refused by RabbitMQ
(406 PRECONDITION_FAILED), which surfaces as BrokerError.
"""

from collections.abc import Awaitable, Callable
from typing import Any

from hub.broker._rabbit_channel import AsyncChannel
from hub.broker._rabbit_errors import reply_code
from hub.broker.base import DEAD_LETTER_EXCHANGE, QueueSpec, Topology
from hub.errors import BrokerError

ChannelSource = Callable[[], Awaitable[AsyncChannel]]

NOT_FOUND = 404


def queue_arguments(spec: QueueSpec, *, quorum: bool) -> dict[str, Any]:
    arguments: dict[str, Any] = {"x-queue-type": "quorum"} if quorum else {}
    if spec.dead_letter:
        arguments["x-dead-letter-exchange"] = DEAD_LETTER_EXCHANGE
        arguments["x-dead-letter-routing-key"] = spec.name
    return arguments


def retry_queue_arguments(spec: QueueSpec, delay_ms: int, *, quorum: bool) -> dict[str, Any]:
    arguments: dict[str, Any] = {"x-queue-type": "quorum"} if quorum else {}
    arguments["x-message-ttl"] = delay_ms
    arguments["x-dead-letter-exchange"] = ""
    arguments["x-dead-letter-routing-key"] = spec.name
    return arguments


async def declare_topology(channel: ChannelSource, topology: Topology, *, quorum: bool) -> set[str]:
    """Declare `topology`; returns the exchanges now known to exist.

    `channel` gives the (re-opened if needed) channel to declare on: a failed passive check closes it.

    Raises:
        BrokerError: RabbitMQ refused a declaration (e.g. the same name with other arguments).
    """
    exchanges: set[str] = set()
    for exchange in topology.exchanges:
        await _declare_exchange(await channel(), exchange.name, exchange.type)
        exchanges.add(exchange.name)
    plain: dict[str, Any] = {"x-queue-type": "quorum"} if quorum else {}
    for spec in topology.queues:
        if spec.dead_letter and DEAD_LETTER_EXCHANGE not in exchanges:
            await _declare_exchange(await channel(), DEAD_LETTER_EXCHANGE, "direct")
            exchanges.add(DEAD_LETTER_EXCHANGE)
        await _declare_queue(await channel(), spec.name, queue_arguments(spec, quorum=quorum))
        if spec.dead_letter:
            await _declare_queue(await channel(), spec.dlq_name, plain)
            await _bind(await channel(), spec.dlq_name, DEAD_LETTER_EXCHANGE, spec.name)
        for delay_ms in spec.retry_delays_ms:
            arguments = retry_queue_arguments(spec, delay_ms, quorum=quorum)
            await _declare_queue(await channel(), spec.retry_queue_name(delay_ms), arguments)
        for exchange_name, routing_key in spec.bindings:
            if exchange_name not in exchanges:
                await _ensure_exchange(channel, exchange_name)
                exchanges.add(exchange_name)
            await _bind(await channel(), spec.name, exchange_name, routing_key)
    return exchanges


async def exchange_exists(channel: AsyncChannel, name: str) -> bool:
    """Passive check; a missing exchange closes `channel` (RabbitMQ's way), so use a spare one."""
    try:
        await channel.call(channel.raw.exchange_declare, name, passive=True)
    except BrokerError as exc:
        if reply_code(exc) == NOT_FOUND:
            return False
        raise
    return True


async def _ensure_exchange(channel: ChannelSource, name: str) -> None:
    # A binding to an exchange the topology does not list: keep it if it exists, else make it a topic.
    if not await exchange_exists(await channel(), name):
        await _declare_exchange(await channel(), name, "topic")


async def _declare_exchange(channel: AsyncChannel, name: str, kind: str) -> None:
    await channel.call(channel.raw.exchange_declare, name, exchange_type=kind, durable=True)


async def _declare_queue(channel: AsyncChannel, name: str, arguments: dict[str, Any]) -> None:
    await channel.call(channel.raw.queue_declare, name, durable=True, arguments=arguments)


async def _bind(channel: AsyncChannel, queue: str, exchange: str, routing_key: str) -> None:
    await channel.call(channel.raw.queue_bind, queue, exchange, routing_key=routing_key)
