"""The business registry's demo flow, run as `lgsp demo` runs it: its own sandbox, a real hub, HTTP."""

from pathlib import Path

from connectors.business_registry.demo import BusinessFlow, bad_check_digit
from hub.demo.flow import DEMO_CLIENT, DEMO_KEY, DemoContext
from tests.conftest import unique_namespace
from tests.hub.harness import running_hub


def test_bad_check_digit_changes_only_the_check_digit() -> None:
    assert bad_check_digit("0141400201") == "0141400202"
    assert bad_check_digit("5895305569-001") == "5895305560-001"


async def test_business_flow_scenarios_all_behave_through_hub(tmp_path: Path) -> None:
    # Given the flow's sandbox started and a hub built from the fragment it returns
    flow = BusinessFlow()
    fragment = await flow.start()
    try:
        config = {
            "broker": {"url": "embedded://", "namespace": unique_namespace()},
            "store": {"url": f"sqlite+aiosqlite:///{tmp_path}/demo.sqlite3"},
            "members": {DEMO_CLIENT: {"api_keys": [DEMO_KEY]}},
            "connectors": fragment["connectors"],
            "services": fragment["services"],
            "acl": [{"client": DEMO_CLIENT, "services": fragment["allowed"]}],
        }
        async with running_hub(config) as running:
            context = DemoContext(http=running.http, gateway_url=running.gateway.url)
            # When every scenario runs, in order, through the gateway
            outcomes = [(scenario.name, await scenario.run(context)) for scenario in flow.scenarios()]
    finally:
        await flow.stop()
    # Then each behaved: look-up, branch, search, refused code, cache hit
    assert len(outcomes) == 5
    assert all(outcome.ok for _, outcome in outcomes), outcomes
    assert "X-Cache: HIT" in outcomes[-1][1].got
