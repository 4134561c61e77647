"""The submission route: served by the gateway without FastAPI's per-request layers, still described in
the OpenAPI document, and answering other methods as before."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from starlette.routing import Mount, Route

from tests.edocs.harness import SENDER, Pki, RunningEdocs, edocs_config, headers, package, running_edocs


@pytest.fixture
async def edocs(pki: Pki, tmp_path: Path) -> AsyncIterator[RunningEdocs]:
    config = edocs_config(pki, broker_url="embedded://", store_url=f"sqlite+aiosqlite:///{tmp_path}/s.db")
    async with running_edocs(config, workers=False) as running:
        yield running


async def test_routes_submission_is_a_plain_route_ahead_of_the_fastapi_mount(edocs: RunningEdocs) -> None:
    # Given the gateway app of a hub with the document exchange on
    routes = edocs.hub.gateway_app().routes

    # When its routes are listed in matching order
    plain = [i for i, r in enumerate(routes) if type(r) is Route and r.path == "/v1/edocs"]
    mounts = [i for i, r in enumerate(routes) if isinstance(r, Mount)]

    # Then POST /v1/edocs is a plain Starlette route, matched before the FastAPI sub-application
    assert len(plain) == 1 and not isinstance(routes[plain[0]], APIRoute)
    assert routes[plain[0]].methods == {"POST"}
    assert mounts and plain[0] < mounts[0]


async def test_routes_submission_is_still_in_the_openapi_document(edocs: RunningEdocs) -> None:
    # When the OpenAPI document is read
    document = (await edocs.http.get("/openapi.json")).json()

    # Then the submission is described once, with the other document exchange routes
    assert list(document["paths"]["/v1/edocs"]) == ["post"]
    assert "/v1/edocs/inbox" in document["paths"]


async def test_routes_submission_answers_as_before(edocs: RunningEdocs, pki: Pki) -> None:
    # When a package is submitted, then fetched with the wrong method
    accepted = await edocs.submit(package(pki))
    wrong_method = await edocs.http.get("/v1/edocs", headers=headers(SENDER))

    # Then the package is accepted as JSON with its Location, and GET is still refused by method
    assert accepted.status_code == 201, accepted.text
    assert accepted.headers["content-type"] == "application/json"
    assert accepted.headers["location"] == f"/v1/edocs/{accepted.json()['id']}"
    assert wrong_method.status_code == 405


async def test_routes_submission_is_served_without_starlettes_stack(
    edocs: RunningEdocs, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a gateway whose Starlette app would fail any request it were handed
    app = edocs.gateway.app

    async def starlette_must_not_run(scope: object, receive: object, send: object) -> None:
        raise AssertionError(f"Starlette was asked to serve {scope}")

    monkeypatch.setattr(app, "app", starlette_must_not_run)

    # When a package is submitted
    accepted = await edocs.submit(package(pki))

    # Then the submission route answered it by itself
    assert accepted.status_code == 201, accepted.text


async def test_routes_submission_failing_unexpectedly_answers_a_typed_500_and_keeps_serving(
    edocs: RunningEdocs, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a store that fails once with an error nobody foresaw
    service = edocs.extension.service
    real_submit = service.submit
    calls = 0

    async def failing_once(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom in the store")
        return await real_submit(*args, **kwargs)

    monkeypatch.setattr(service, "submit", failing_once)

    # When a package is submitted, then submitted again
    failed = await edocs.submit(package(pki))
    accepted = await edocs.submit(package(pki))

    # Then the first gets the internal-error type as JSON without internals, and the next one works
    assert failed.status_code == 500
    assert failed.headers["content-type"] == "application/json"
    assert failed.json()["type"] == failed.headers["x-road-error"] == "Server.ServerProxy.InternalError"
    assert "boom" not in failed.text
    assert accepted.status_code == 201, accepted.text
