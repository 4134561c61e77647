"""On RabbitMQ: a worker process killed mid-push, and the connection closed under the hub mid-run."""

import asyncio
import json
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from typer.testing import CliRunner

from hub.broker.rabbitmq import RabbitBroker
from hub.edocs import tables
from hub.edocs.cli import edocs_app
from tests.edocs.harness import (
    PULL_A,
    PUSHED,
    Pki,
    RunningEdocs,
    edocs_config,
    eventually,
    package,
    push_endpoint,
    running_edocs,
)
from tests.hub.broker.conftest import force_close

pytestmark = pytest.mark.rabbitmq


async def _inbox_ids(running: RunningEdocs, organ: str) -> list[str]:
    found: list[str] = []
    after = "0"
    while after is not None:
        page = await running.inbox(organ, after=after, limit=100)
        found += [item["id"] for item in page["items"]]
        after = page["next"]
    return found


async def test_rabbit_worker_process_killed_mid_push_is_redelivered_and_delivered_once(
    pki: Pki, rabbitmq_url: str, tmp_path: Path
) -> None:
    async with push_endpoint() as endpoint:
        endpoint.hang_next = 1
        config = edocs_config(
            pki,
            broker_url=rabbitmq_url,
            store_url=f"sqlite+aiosqlite:///{tmp_path}/s.db",
            push_url=endpoint.url,
            push={"timeout": 0.5, "retry_delays_ms": [50, 100, 200]},
        )
        async with running_edocs(config, workers=False) as running:
            # Given the only worker in its own process, and a push endpoint that hangs on the first call
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.edocs.worker_process",
                json.dumps(config),
                stdout=asyncio.subprocess.PIPE,
            )
            try:
                assert process.stdout is not None
                assert (await asyncio.wait_for(process.stdout.readline(), 30)).startswith(b"READY")
                hub_id = (await running.submit(package(pki, recipients=(PUSHED,)))).json()["id"]
                await asyncio.wait_for(endpoint.entered.wait(), 10)
                # When that worker is killed mid-push, before recording or acking anything
                process.kill()
                await process.wait()
            finally:
                if process.returncode is None:
                    process.kill()
            # And a worker comes up in this process
            await running.extension.start(workers=True)
            # Then RabbitMQ redelivers, the dead worker's lease runs out, and the push happens once more
            await eventually(lambda: len(endpoint.accepted) == 1, timeout=15, what="the redelivered push")
            assert len(endpoint.calls) == 2
            assert {c["headers"]["idempotency-key"] for c in endpoint.calls} == {f"edoc:{hub_id}:{PUSHED}"}
            await eventually(lambda: _states(running, ["delivered"]), what="the delivery recorded")
            async with running.hub.store.engine.connect() as connection:
                (row,) = (await connection.execute(sa.select(tables.deliveries))).all()
            assert row.attempts == 2


async def test_rabbit_connection_dropped_mid_run_loses_nothing(
    pki: Pki, rabbitmq_url: str, tmp_path: Path
) -> None:
    async with push_endpoint() as endpoint:
        config = edocs_config(
            pki,
            broker_url=rabbitmq_url,
            store_url=f"sqlite+aiosqlite:///{tmp_path}/s.db",
            push_url=endpoint.url,
        )
        broker = RabbitBroker(
            rabbitmq_url,
            connection_name=f"lgsp-edocs-test-{uuid.uuid4().hex[:8]}",
            reconnect_delays=(0.05, 0.1, 0.2),
        )
        async with running_edocs(config, broker=broker) as running:
            # Given packages submitted continuously by four clients
            statuses: list[int] = []
            cut_at: list[int] = []

            async def submit() -> None:
                while not cut_at or len(statuses) < cut_at[0] + 30:
                    if len(statuses) > 400:
                        return
                    data = package(pki, recipients=(PULL_A, PUSHED))
                    statuses.append((await running.submit(data)).status_code)

            async def cut() -> bool:
                await eventually(lambda: len(statuses) >= 10, what="the first submissions")
                found = await force_close(broker)
                cut_at.append(len(statuses))
                return found

            # When RabbitMQ closes the hub's connection mid-run, and clients go on submitting
            cutter = asyncio.create_task(cut())
            await asyncio.gather(*(submit() for _ in range(4)))
            assert await cutter, "the hub's connection was not found in rabbitmqctl list_connections"
            # Then every package was accepted, and every delivery arrives exactly once
            total = len(statuses)
            assert statuses == [201] * total and total >= cut_at[0] + 30
            await eventually(
                lambda: _count(running, total), timeout=30, what="every document in the pull inbox"
            )
            await eventually(lambda: len(endpoint.for_kind("edoc")) == total, timeout=30, what="every push")
            ids = await _inbox_ids(running, PULL_A)
            assert len(ids) == len(set(ids)) == total
            assert len(endpoint.calls) >= total
            await eventually(broker.healthy, what="the reconnected broker")


async def _count(running: RunningEdocs, expected: int) -> bool:
    return len(await _inbox_ids(running, PULL_A)) == expected


async def test_rabbit_dead_letter_listed_and_replayed_from_the_cli(
    pki: Pki, rabbitmq_url: str, tmp_path: Path
) -> None:
    async with push_endpoint() as endpoint:
        # Given a push refused for good (422): dead-lettered at once
        endpoint.fail_next, endpoint.status_on_failure = 1, 422
        config = edocs_config(
            pki,
            broker_url=rabbitmq_url,
            store_url=f"sqlite+aiosqlite:///{tmp_path}/s.db",
            push_url=endpoint.url,
        )
        config_file = tmp_path / "lgsp.yaml"
        config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
        async with running_edocs(config) as running:
            await running.submit(package(pki, recipients=(PUSHED,)))
            dlq = running.extension.names.push.dlq_name
            await eventually(lambda: _messages(running, dlq, 1), what="the dead letter in the DLQ")
            runner = CliRunner()
            # When an operator lists the DLQ and replays the delivery
            listed = await asyncio.to_thread(runner.invoke, edocs_app, ["dlq", "-c", str(config_file)])
            assert listed.exit_code == 0 and f"{dlq}: 1 message" in listed.output, listed.output
            async with running.hub.store.engine.connect() as connection:
                delivery_id = await connection.scalar(sa.select(tables.deliveries.c.id))
            replay = await asyncio.to_thread(
                runner.invoke, edocs_app, ["retry", str(delivery_id), "-c", str(config_file)]
            )
            assert replay.exit_code == 0 and "published" in replay.output, replay.output
            # Then it is delivered once, and its copy has left the DLQ
            await eventually(lambda: len(endpoint.accepted) == 1, what="the replayed push")
            assert await running.hub.broker.message_count(dlq) == 0


async def _messages(running: RunningEdocs, queue: str, count: int) -> bool:
    return await running.hub.broker.message_count(queue) == count


async def _states(running: RunningEdocs, states: list[str]) -> bool:
    async with running.hub.store.engine.connect() as connection:
        return [r.state for r in await connection.execute(sa.select(tables.deliveries))] == states
