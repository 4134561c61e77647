"""`lgsp demo`: the whole hub in one process on real HTTP, running real scenarios."""

import logging
import tempfile
import time
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from hub.demo.core_flow import CoreFlow
from hub.demo.flow import DEMO_CLIENT, DEMO_KEY, DemoContext, DemoFlow, Outcome, Scenario
from hub.runtime import Hub
from hub.serving import AppServer
from hub.settings import load_settings

log = logging.getLogger(__name__)

__all__ = ["DemoContext", "DemoFlow", "Outcome", "Scenario", "discover_flows", "run_demo"]


def discover_flows() -> list[DemoFlow]:
    """The core flow, then every flow installed under the ``lgsp_hub.demo`` entry-point group."""
    flows: list[DemoFlow] = [CoreFlow()]
    for point in sorted(entry_points(group="lgsp_hub.demo"), key=lambda p: p.name):
        flows.append(point.load()())
    return flows


def _merge(fragments: list[dict[str, Any]], broker_url: str | None, store_url: str) -> dict[str, Any]:
    config: dict[str, Any] = {
        "broker": {"url": broker_url or "embedded://"},
        "store": {"url": store_url},
        "gateway": {"request_timeout": 10},
        "members": {DEMO_CLIENT: {"name": "Demo one-stop system", "api_keys": [DEMO_KEY]}},
        "connectors": {},
        "services": {},
        "acl": [],
    }
    allowed: list[str] = []
    for fragment in fragments:
        for key, value in fragment.items():
            if key == "allowed":
                allowed.extend(value)
            elif key == "acl":
                config["acl"].extend(value)
            elif isinstance(value, dict):
                config[key] = {**config.get(key, {}), **value}
            else:
                config[key] = value
    config["acl"].append({"client": DEMO_CLIENT, "services": allowed})
    return config


async def run_demo(console: Console, *, broker_url: str | None = None, store_url: str | None = None) -> bool:
    """Run every demo flow through a real gateway; print a table; True when every scenario behaved."""
    flows = discover_flows()
    workdir = Path(tempfile.mkdtemp(prefix="lgsp-demo-"))
    store = store_url or f"sqlite+aiosqlite:///{workdir / 'demo.sqlite3'}"
    started: list[DemoFlow] = []
    rows: list[tuple[str, Scenario, Outcome, float]] = []
    try:
        fragments = []
        for flow in flows:
            fragments.append(await flow.start())
            started.append(flow)
        settings = load_settings(data=_merge(fragments, broker_url, store), environ={})
        hub = Hub.create(settings)
        await hub.start()
        try:
            await hub.start_workers()
            await hub.start_extensions(workers=True)
            gateway = await AppServer(hub.gateway_app()).start()
            console.print(
                f"lgsp demo: gateway {gateway.url}, broker {settings.broker.url.split('@')[-1]}, store {store.split('@')[-1]}"
            )
            try:
                async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
                    context = DemoContext(http=http, gateway_url=gateway.url)
                    for flow in flows:
                        for scenario in flow.scenarios():
                            begin = time.perf_counter()
                            try:
                                outcome = await scenario.run(context)
                            except Exception as exc:
                                log.exception("demo scenario %s failed", scenario.name)
                                outcome = Outcome(False, f"raised {type(exc).__name__}: {exc}")
                            rows.append((flow.name, scenario, outcome, time.perf_counter() - begin))
            finally:
                await gateway.stop()
        finally:
            await hub.stop()
    finally:
        for flow in reversed(started):
            await flow.stop()
    table = Table(title="lgsp demo: requests through the hub")
    for column in ("flow", "scenario", "expected", "got", "ms", "ok"):
        table.add_column(column)
    for flow_name, scenario, outcome, seconds in rows:
        table.add_row(
            flow_name,
            scenario.name,
            scenario.expect,
            outcome.got,
            f"{seconds * 1000:.0f}",
            "[green]yes[/green]" if outcome.ok else "[red]NO[/red]",
        )
    console.print(table)
    passed = sum(1 for *_, outcome, _ in rows if outcome.ok)
    console.print(f"{passed}/{len(rows)} scenarios behaved as expected")
    return passed == len(rows)
