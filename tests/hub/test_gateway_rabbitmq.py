"""The gateway on RabbitMQ while the connection is closed under it: every request is answered."""

import asyncio
from pathlib import Path

import pytest

from hub.broker.rabbitmq import RabbitBroker
from tests.hub.broker.conftest import force_close
from tests.hub.harness import PROVIDER, hub_config, running_backend, running_hub

ECHO = f"/r1/{PROVIDER}/echo/v1"


@pytest.mark.rabbitmq
async def test_gateway_keeps_answering_when_rabbitmq_closes_its_connection(
    rabbitmq_url: str, tmp_path: Path
) -> None:
    # Given a hub on RabbitMQ in front of a real backend, under a steady stream of requests
    async with (
        running_backend() as backend,
        running_hub(
            hub_config(backend.url, broker_url=rabbitmq_url, store_url=f"sqlite+aiosqlite:///{tmp_path}/h.db")
        ) as running,
    ):
        broker = running.hub.broker
        assert isinstance(broker, RabbitBroker)
        statuses: list[int] = []
        stop = asyncio.Event()

        async def client(n: int) -> None:
            i = 0
            while not stop.is_set():
                response = await running.http.post(
                    f"{ECHO}/c{n}-{i}", content=b"{}", headers=running.headers()
                )
                statuses.append(response.status_code)
                i += 1

        clients = [asyncio.create_task(client(n)) for n in range(4)]
        await asyncio.sleep(0.5)
        # When the broker closes the hub's connection under it
        assert await force_close(broker)
        await asyncio.sleep(2.0)
        before = len(statuses)
        await asyncio.sleep(1.0)
        stop.set()
        await asyncio.gather(*clients)
    # Then no request went unanswered: each got 200, or a clear 503/504 while the link was down
    assert set(statuses) <= {200, 503, 504}, sorted(set(statuses))
    # And after the reconnect requests succeed again
    assert statuses[before:] and all(s == 200 for s in statuses[before:]), statuses[before:]
    # And every 200 reached the backend (nothing answered without being done)
    assert statuses.count(200) <= len(backend.calls)
