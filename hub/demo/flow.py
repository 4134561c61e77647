"""Demo flows: each brings its backends or sandboxes, the configuration they need, and scenarios.

Flows are found by entry point (``lgsp_hub.demo``), so each connector adds its own story to
`lgsp demo` without the hub importing it.
"""

import abc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

DEMO_CLIENT = "VN/GOV/000.00.00.H40/one-stop"
DEMO_KEY = "demo-key"


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    got: str


@dataclass
class DemoContext:
    """What scenarios use: an HTTP client on the running gateway and the demo member's credentials."""

    http: httpx.AsyncClient
    gateway_url: str
    client: str = DEMO_CLIENT
    api_key: str = DEMO_KEY

    def headers(self, **extra: str) -> dict[str, str]:
        return {"X-Road-Client": self.client, "X-Api-Key": self.api_key, **extra}


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    expect: str
    run: Callable[[DemoContext], Awaitable[Outcome]]


class DemoFlow(abc.ABC):
    """One story of the demo."""

    name: str = "flow"

    @abc.abstractmethod
    async def start(self) -> dict[str, Any]:
        """Start this flow's servers; return the configuration fragment it needs
        (``connectors``, ``services``, ``acl`` services for the demo client, ``members``)."""

    @abc.abstractmethod
    def scenarios(self) -> list[Scenario]:
        """The scenarios to run, in order."""

    async def stop(self) -> None:  # noqa: B027 - optional hook
        """Stop this flow's servers."""


def expect_status(status: int, error_type: str | None = None) -> Callable[[httpx.Response], Outcome]:
    """An outcome check: this HTTP status (and X-Road error type, when given)."""

    def check(response: httpx.Response) -> Outcome:
        got_type = response.headers.get("x-road-error")
        got = f"{response.status_code}" + (f" {got_type}" if got_type else "")
        ok = response.status_code == status and (error_type is None or got_type == error_type)
        return Outcome(ok, got)

    return check
