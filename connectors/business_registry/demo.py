"""The business registry's story in `lgsp demo`: look-ups, a search and the cache, through the hub.

Registered under the entry-point group ``lgsp_hub.demo`` as ``business_registry``. The sandbox runs
on 127.0.0.1 with a fixed seed, so the enterprises the scenarios ask for are the same on every run.
"""

from typing import Any

import httpx

from connectors.business_registry.data import Enterprise, Registry
from connectors.business_registry.hub_config import LOOKUP_SERVICE, SEARCH_SERVICE, business_fragment
from connectors.business_registry.sandbox import SandboxOptions, SandboxState, create_app
from hub.demo.flow import DemoContext, DemoFlow, Outcome, Scenario, expect_status
from hub.serving import AppServer

SEED = 7
REGISTRY_SIZE = 50_000
SEARCH_QUERY = "xây dựng"
SEARCH_PAGE, SEARCH_PAGE_SIZE = 2, 5


def bad_check_digit(code: str) -> str:
    """``code`` with its check digit changed: well-formed, but refused by the tax-code check."""
    return f"{code[:9]}{(int(code[9]) + 1) % 10}{code[10:]}"


class BusinessFlow(DemoFlow):
    """Enterprise and branch look-ups, a paged search, a refused code and a cache hit via REST r1."""

    name = "business"

    def __init__(self, *, latency_ms: float = 0.0) -> None:
        self._options = SandboxOptions(seed=SEED, size=REGISTRY_SIZE, latency_ms=latency_ms)
        app = create_app(**self._options.model_dump())
        self.registry: Registry = app.state.registry
        self.state: SandboxState = app.state.sandbox
        self._server = AppServer(app)

    async def start(self) -> dict[str, Any]:
        """Start the sandbox; the fragment binds both business services to it."""
        await self._server.start()
        return business_fragment(
            self._server.url,
            credentials=self._options.credentials,
            retry={"attempts": 2, "backoff": 0.1},
            total_timeout=5.0,
        )

    def scenarios(self) -> list[Scenario]:
        enterprise = self.registry.enterprise(0)
        parent = next(e for e in self.registry if e.branches and e.status == "active")
        branch = parent.branches[0]
        refused = bad_check_digit(enterprise.code)
        total, page_items = self.registry.search(SEARCH_QUERY, SEARCH_PAGE, SEARCH_PAGE_SIZE)

        async def lookup(ctx: DemoContext) -> Outcome:
            response = await _lookup(ctx, enterprise.code)
            outcome = expect_status(200)(response)
            found = response.json() if outcome.ok else {}
            ok = _same(found, enterprise) and found.get("name") == enterprise.name
            return Outcome(ok, f"{outcome.got} {found.get('name', '')} ({found.get('status')})")

        async def branch_lookup(ctx: DemoContext) -> Outcome:
            response = await _lookup(ctx, branch.code)
            outcome = expect_status(200)(response)
            found = response.json() if outcome.ok else {}
            ok = found.get("name") == branch.name and found.get("parent_enterprise_code") == parent.code
            return Outcome(
                ok, f"{outcome.got} {found.get('name', '')} of {found.get('parent_enterprise_code')}"
            )

        async def search(ctx: DemoContext) -> Outcome:
            query = {"name": SEARCH_QUERY, "page": SEARCH_PAGE, "page_size": SEARCH_PAGE_SIZE}
            response = await ctx.http.post(f"/r1/{SEARCH_SERVICE}", json=query, headers=ctx.headers())
            outcome = expect_status(200)(response)
            page = response.json() if outcome.ok else {}
            codes = [item.get("enterprise_code") for item in page.get("items", [])]
            ok = page.get("total") == total and codes == [e.code for e in page_items]
            return Outcome(
                ok, f"{outcome.got} total={page.get('total')} page {page.get('page')}: {len(codes)} items"
            )

        async def invalid(ctx: DemoContext) -> Outcome:
            before = self.state.requests
            response = await _lookup(ctx, refused)
            outcome = expect_status(400, "Client.InvalidRequest")(response)
            field = (response.json().get("detail") or {}).get("field")
            kept = self.state.requests == before
            return Outcome(
                outcome.ok and field == "enterprise_code" and kept,
                f"{outcome.got} field={field}" + (", registry not called" if kept else ", registry CALLED"),
            )

        async def cached(ctx: DemoContext) -> Outcome:
            before = self.state.requests
            response = await _lookup(ctx, enterprise.code)
            outcome = expect_status(200)(response)
            hit = response.headers.get("x-cache")
            ok = outcome.ok and _same(response.json(), enterprise) and hit == "HIT"
            ok = ok and self.state.requests == before
            return Outcome(ok, f"{outcome.got} X-Cache: {hit}, Age {response.headers.get('age')}")

        return [
            Scenario(
                f"enterprise lookup {enterprise.code}",
                f"200 {enterprise.name} ({enterprise.status})",
                lookup,
            ),
            Scenario(f"branch lookup {branch.code}", f"200 {branch.name} of {parent.code}", branch_lookup),
            Scenario(
                f"enterprise search {SEARCH_QUERY!r}, page {SEARCH_PAGE} of {SEARCH_PAGE_SIZE}",
                f"200 total={total} page {SEARCH_PAGE}: {len(page_items)} items",
                search,
            ),
            Scenario(
                f"enterprise lookup {refused} (bad check digit)",
                "400 Client.InvalidRequest field=enterprise_code, registry not called",
                invalid,
            ),
            Scenario(f"enterprise lookup {enterprise.code} again", "200 X-Cache: HIT", cached),
        ]

    async def stop(self) -> None:
        """Stop the sandbox."""
        await self._server.stop()


async def _lookup(ctx: DemoContext, code: str) -> httpx.Response:
    return await ctx.http.post(f"/r1/{LOOKUP_SERVICE}", json={"enterprise_code": code}, headers=ctx.headers())


def _same(found: dict[str, Any], enterprise: Enterprise) -> bool:
    return found.get("enterprise_code") == enterprise.code and found.get("status") == enterprise.status


__all__ = ["BusinessFlow", "bad_check_digit"]
