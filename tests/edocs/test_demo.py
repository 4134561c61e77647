"""The demo flow of the document exchange runs through a real hub and every scenario behaves."""

from pathlib import Path

import httpx

from hub.demo.flow import DemoContext
from hub.edocs.demo import EdocsFlow
from hub.registry import ConnectorRegistry
from hub.runtime import Hub
from hub.serving import AppServer
from hub.settings import load_settings
from tests.conftest import unique_namespace


async def test_edocs_demo_flow_every_scenario_behaves(tmp_path: Path) -> None:
    # Given the flow's configuration fragment on a hub with the embedded broker and SQLite
    flow = EdocsFlow()
    fragment = await flow.start()
    try:
        config = {
            "broker": {"url": "embedded://", "namespace": unique_namespace()},
            "store": {"url": f"sqlite+aiosqlite:///{tmp_path}/demo.db"},
            "members": fragment["members"],
            "edocs": fragment["edocs"],
        }
        hub = Hub.create(load_settings(data=config, environ={}), registry=ConnectorRegistry([]))
        await hub.start()
        try:
            await hub.start_extensions(workers=True)
            gateway = await AppServer(hub.gateway_app()).start()
            try:
                async with httpx.AsyncClient(base_url=gateway.url, timeout=20) as http:
                    context = DemoContext(http=http, gateway_url=gateway.url)
                    # When every scenario runs in order
                    outcomes = [(s.name, await s.run(context)) for s in flow.scenarios()]
            finally:
                await gateway.stop()
        finally:
            await hub.stop(timeout=5)
    finally:
        await flow.stop()
    # Then each behaved as expected
    failed = [(name, outcome.got) for name, outcome in outcomes if not outcome.ok]
    assert not failed, failed
    assert len(outcomes) == 7
