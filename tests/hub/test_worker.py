"""The worker: one disposition table, ack only after the reply, redelivery after a crash."""

import asyncio
import json
import sys
from typing import Any, ClassVar

import pytest

from hub.connector import Connector, ConnectorContext, ConnectorReply, ConnectorRequest, Operation
from hub.errors import BackendRejected, BackendTimeout, BackendUnavailable, InvalidInput, NotFound
from hub.registry import ConnectorRegistry, bind_services
from hub.settings import load_settings
from hub.worker import Worker
from tests.hub.harness import CLIENT, KEY, running_hub

PROVIDER = "VN/GOV/000.00.00.H40/scripted"


class Script:
    """What the scripted connector does per call, shared with the test."""

    def __init__(self) -> None:
        self.calls: list[ConnectorRequest] = []
        self.actions: list[Any] = []
        self.entered = asyncio.Event()


SCRIPT = Script()


class Scripted(Connector):
    name: ClassVar[str] = "scripted"
    operations: ClassVar[dict[str, Operation]] = {"run": Operation("run")}

    @classmethod
    def create(cls, settings: Any, context: ConnectorContext) -> "Scripted":
        return cls()

    async def call(self, request: ConnectorRequest) -> ConnectorReply:
        SCRIPT.calls.append(request)
        SCRIPT.entered.set()
        action = SCRIPT.actions.pop(0) if SCRIPT.actions else "ok"
        if isinstance(action, BaseException):
            raise action
        if action == "hang":
            await asyncio.sleep(3600)
        if isinstance(action, float):
            await asyncio.sleep(action)
        return ConnectorReply(body=json.dumps({"call": len(SCRIPT.calls)}).encode())


@pytest.fixture(autouse=True)
def fresh_script() -> None:
    global SCRIPT
    SCRIPT.__init__()  # type: ignore[misc]


def config(broker_url: str, store_url: str, namespace: str, attempts: int = 3) -> dict[str, Any]:
    return {
        "broker": {"url": broker_url, "namespace": namespace},
        "store": {"url": store_url},
        "gateway": {"request_timeout": 5.0},
        "members": {CLIENT: {"api_keys": [KEY]}},
        "connectors": {"scripted": {"type": "scripted", "retry": {"attempts": attempts, "backoff": 0.01}}},
        "services": {f"{PROVIDER}/run/v1": {"connector": "scripted"}},
        "acl": [{"client": CLIENT, "services": ["*"]}],
    }


HEADERS = {"X-Road-Client": CLIENT, "X-Api-Key": KEY}
URL = f"/r1/{PROVIDER}/run/v1"


@pytest.mark.parametrize(
    ("actions", "status", "error_type", "calls"),
    [
        (
            [InvalidInput("personal_id must have 12 digits", field="personal_id")],
            400,
            "Client.InvalidRequest",
            1,
        ),
        ([NotFound("no citizen 001096001005")], 404, "Server.ServerProxy.NotFound", 1),
        ([BackendRejected("quota exceeded", status_code=429)], 429, "Server.ServerProxy.BackendRejected", 1),
        ([BackendUnavailable("down")] * 3, 502, "Server.ServerProxy.BackendUnavailable", 3),
        (
            [BackendTimeout("slow"), BackendTimeout("slow"), BackendTimeout("slow")],
            504,
            "Server.ServerProxy.BackendTimeout",
            3,
        ),
        ([BackendUnavailable("blip")], 200, None, 2),
        ([RuntimeError("secret internals")], 500, "Server.ServerProxy.InternalError", 1),
    ],
)
async def test_worker_applies_the_disposition_table(actions, status, error_type, calls, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Given a connector that fails as scripted
    SCRIPT.actions = list(actions)
    from tests.conftest import unique_namespace

    async with running_hub(
        config("embedded://", f"sqlite+aiosqlite:///{tmp_path}/w.db", unique_namespace()),
        registry=ConnectorRegistry([Scripted]),
    ) as running:
        # When a client calls it
        response = await running.http.post(URL, content=b"{}", headers=HEADERS)
    # Then the status, type and number of attempts follow the table
    assert response.status_code == status
    assert response.headers.get("x-road-error") == error_type
    assert len(SCRIPT.calls) == calls
    if status == 400:
        assert response.json()["detail"]["field"] == "personal_id"
    if status == 500:
        assert "secret internals" not in response.text


async def test_worker_killed_before_ack_redelivers_and_answers_once_embedded(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import unique_namespace

    namespace = unique_namespace()
    data = config("embedded://", f"sqlite+aiosqlite:///{tmp_path}/w.db", namespace)
    registry = ConnectorRegistry([Scripted])
    settings = load_settings(data=data, environ={})
    # Given a gateway and worker A sharing the embedded broker
    async with running_hub(data, workers=False, registry=registry) as running:
        worker_a = Worker(running.hub.broker, bind_services(settings, registry), namespace=namespace)
        await worker_a.start()
        SCRIPT.actions = ["hang"]
        request = asyncio.create_task(running.http.post(URL, content=b"{}", headers=HEADERS))
        await asyncio.wait_for(SCRIPT.entered.wait(), 5)
        # When worker A's consumer goes away without acking
        for consumer in worker_a._consumers:
            await consumer.cancel()
        # And worker B comes up
        worker_b = Worker(running.hub.broker, bind_services(settings, registry), namespace=namespace)
        await worker_b.start()
        response = await asyncio.wait_for(request, 10)
        # Then the message was redelivered to B and answered once
        assert response.status_code == 200, response.text
        assert response.json() == {"call": 2}
        assert SCRIPT.calls[0].message_id == SCRIPT.calls[1].message_id
        await worker_b.stop(2)


@pytest.mark.rabbitmq
async def test_worker_process_sigkilled_before_ack_redelivers_and_answers_once(
    rabbitmq_url: str, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import unique_namespace

    namespace = unique_namespace()
    data = config(rabbitmq_url, f"sqlite+aiosqlite:///{tmp_path}/w.db", namespace)
    registry = ConnectorRegistry([Scripted])
    settings = load_settings(data=data, environ={})
    async with running_hub(data, workers=False, registry=registry) as running:
        # Given worker A in its own process, whose connector hangs
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.hub.worker_process", json.dumps(data), stdout=asyncio.subprocess.PIPE
        )
        try:
            assert process.stdout is not None
            assert (await asyncio.wait_for(process.stdout.readline(), 20)).startswith(b"READY")
            request = asyncio.create_task(running.http.post(URL, content=b"{}", headers=HEADERS))
            entered = await asyncio.wait_for(process.stdout.readline(), 10)
            assert entered.startswith(b"ENTERED")
            # When worker A is killed after receiving and before acking
            process.kill()
            await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
        # And worker B comes up
        worker_b = Worker(running.hub.broker, bind_services(settings, registry), namespace=namespace)
        await worker_b.start()
        response = await asyncio.wait_for(request, 10)
        # Then B got the redelivered message and the client one answer
        assert response.status_code == 200, response.text
        assert len(SCRIPT.calls) == 1
        assert entered.split()[1].decode() == SCRIPT.calls[0].message_id
        await worker_b.stop(2)


async def test_worker_stop_finishes_in_flight_work(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import unique_namespace

    async with running_hub(
        config("embedded://", f"sqlite+aiosqlite:///{tmp_path}/w.db", unique_namespace()),
        registry=ConnectorRegistry([Scripted]),
    ) as running:
        SCRIPT.actions = [0.3]
        request = asyncio.create_task(running.http.post(URL, content=b"{}", headers=HEADERS))
        await asyncio.wait_for(SCRIPT.entered.wait(), 5)
        # When the worker is asked to stop while a call is in flight
        (worker,) = running.hub.workers
        await worker.stop(timeout=5)
        # Then that call still completes and is answered
        response = await request
        assert response.status_code == 200
        running.hub.workers.clear()
