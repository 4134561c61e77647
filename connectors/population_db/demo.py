"""The population DB's story in `lgsp demo`: lookups and verifications through the hub to the sandbox.

Registered under the entry-point group ``lgsp_hub.demo`` as ``population_db``. The sandbox runs on
127.0.0.1 with a fixed seed, so the citizens the scenarios ask for are the same on every run.
"""

from typing import Any

import httpx

from connectors.population_db.data import Citizen, Population
from connectors.population_db.hub_config import LOOKUP_SERVICE, VERIFY_SERVICE, population_fragment
from connectors.population_db.sandbox import SandboxOptions, create_app
from hub.demo.flow import DemoContext, DemoFlow, Outcome, Scenario, expect_status
from hub.serving import AppServer

SEED = 20240601
POPULATION_SIZE = 100_000
# A child of the first household (parents linked) and a household head.
_LOOKUP_INDEX = 2
_VERIFY_INDEX = 5


def unknown_id(population: Population, near: Citizen) -> str:
    """A well-formed personal id (``near``'s province and birth year) that nobody in ``population`` has."""
    prefix = near.personal_id[:6]
    for serial in range(1_000_000):
        candidate = f"{prefix}{serial:06d}"
        if population.find(candidate) is None:
            return candidate
    raise LookupError(f"every id starting {prefix} is taken")  # pragma: no cover - 10**6 citizens


class PopulationFlow(DemoFlow):
    """Citizen lookup (found, not found, invalid id) and verification (true, false) via REST r1."""

    name = "population"

    def __init__(self, *, latency_ms: float = 0.0) -> None:
        self._options = SandboxOptions(seed=SEED, population_size=POPULATION_SIZE, latency_ms=latency_ms)
        app = create_app(**self._options.model_dump())
        self.population: Population = app.state.sandbox.population
        self._server = AppServer(app)

    async def start(self) -> dict[str, Any]:
        """Start the sandbox; the fragment binds both population services to it."""
        await self._server.start()
        endpoint = f"{self._server.url}{self._options.path}"
        return population_fragment(
            endpoint, options=self._options, timeout_seconds=5.0, retry={"attempts": 2, "backoff": 0.1}
        )

    def scenarios(self) -> list[Scenario]:
        citizen = self.population.citizen(_LOOKUP_INDEX)
        other = self.population.citizen(_VERIFY_INDEX)
        nobody = unknown_id(self.population, citizen)
        identity = {
            "personal_id": other.personal_id,
            "full_name": other.full_name,
            "birth_date": other.birth_date.isoformat(),
        }

        async def lookup(ctx: DemoContext) -> Outcome:
            response = await _post(ctx, LOOKUP_SERVICE, {"personal_id": citizen.personal_id})
            outcome = expect_status(200)(response)
            name = response.json().get("full_name") if outcome.ok else None
            return Outcome(name == citizen.full_name, f"{outcome.got} {name or ''}".strip())

        async def verify(ctx: DemoContext, query: dict[str, str], expected: bool) -> Outcome:
            response = await _post(ctx, VERIFY_SERVICE, query)
            outcome = expect_status(200)(response)
            exists = response.json().get("exists") if outcome.ok else None
            return Outcome(exists is expected, f"{outcome.got} exists={exists}")

        async def verify_true(ctx: DemoContext) -> Outcome:
            return await verify(ctx, identity, True)

        async def verify_false(ctx: DemoContext) -> Outcome:
            return await verify(ctx, {**identity, "full_name": f"{other.full_name} Khác"}, False)

        async def invalid(ctx: DemoContext) -> Outcome:
            response = await _post(ctx, LOOKUP_SERVICE, {"personal_id": "12345"})
            outcome = expect_status(400, "Client.InvalidRequest")(response)
            field = (response.json().get("detail") or {}).get("field")
            return Outcome(outcome.ok and field == "personal_id", f"{outcome.got} field={field}")

        async def not_found(ctx: DemoContext) -> Outcome:
            response = await _post(ctx, LOOKUP_SERVICE, {"personal_id": nobody})
            return expect_status(404, "Server.ServerProxy.NotFound")(response)

        return [
            Scenario(f"citizen lookup {citizen.personal_id}", f"200 {citizen.full_name}", lookup),
            Scenario("citizen verify, matching name and birth date", "200 exists=True", verify_true),
            Scenario("citizen verify, another name", "200 exists=False", verify_false),
            Scenario("citizen lookup, invalid id", "400 Client.InvalidRequest field=personal_id", invalid),
            Scenario(f"citizen lookup {nobody} (nobody)", "404 Server.ServerProxy.NotFound", not_found),
        ]

    async def stop(self) -> None:
        """Stop the sandbox."""
        await self._server.stop()


async def _post(ctx: DemoContext, service: str, query: dict[str, str]) -> httpx.Response:
    return await ctx.http.post(f"/r1/{service}", json=query, headers=ctx.headers())


__all__ = ["PopulationFlow", "unknown_id"]
