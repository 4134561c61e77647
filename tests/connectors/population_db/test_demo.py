"""The population demo flow against a running hub, and the configuration fragment it shares."""

from pathlib import Path

from connectors.population_db.demo import PopulationFlow
from connectors.population_db.hub_config import LOOKUP_SERVICE, VERIFY_SERVICE, population_fragment
from connectors.population_db.sandbox import SandboxOptions
from hub.demo.flow import DEMO_CLIENT, DEMO_KEY, DemoContext
from hub.settings import load_settings
from tests.conftest import unique_namespace
from tests.hub.harness import running_hub


def test_population_fragment_takes_credentials_from_the_sandbox_options() -> None:
    # Given sandbox options with their own user and API key
    options = SandboxOptions(users={"tinh-h40": "s3cret"}, api_keys=("key-h40",))
    # When the fragment is built for them, with one setting overridden
    fragment = population_fragment("http://127.0.0.1:9/dancuquocgia", options=options, timeout_seconds=2.0)
    # Then the connector signs as that user and the hub accepts the fragment as configuration
    settings = fragment["connectors"]["population-db"]["settings"]
    assert (settings["username"], settings["secret"], settings["api_key"]) == (
        "tinh-h40",
        "s3cret",
        "key-h40",
    )
    assert settings["timeout_seconds"] == 2.0
    assert fragment["allowed"] == [LOOKUP_SERVICE, VERIFY_SERVICE]
    config = {key: fragment[key] for key in ("connectors", "services")}
    loaded = load_settings(data=config, environ={})
    assert {str(s): v.operation for s, v in loaded.service_ids().items()} == {
        LOOKUP_SERVICE: "citizen-lookup",
        VERIFY_SERVICE: "citizen-verify",
    }


async def test_population_flow_scenarios_all_behave_through_a_running_hub(tmp_path: Path) -> None:
    # Given the flow started and a hub built from its fragment, as `lgsp demo` builds it
    flow = PopulationFlow()
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
            # When every scenario runs
            scenarios = flow.scenarios()
            outcomes = [await scenario.run(context) for scenario in scenarios]
    finally:
        await flow.stop()
    # Then each behaved and got exactly what it expected, the lookup showing the citizen's name
    assert len(scenarios) == 5
    assert [(s.name, o.ok, o.got) for s, o in zip(scenarios, outcomes, strict=True)] == [
        (s.name, True, s.expect) for s in scenarios
    ]
    assert scenarios[0].expect == f"200 {flow.population.citizen(2).full_name}"
