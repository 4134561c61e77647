"""Gateway end to end: real uvicorn, real backend, both brokers and both stores."""

import asyncio
import base64
import json

import pytest

from tests.hub.harness import (
    CLIENT,
    KEY,
    OTHER_CLIENT,
    OTHER_KEY,
    PROVIDER,
    hub_config,
    running_backend,
    running_embedded,
    running_hub,
)

ECHO = f"/r1/{PROVIDER}/echo/v1"


def error_type(response) -> str:  # type: ignore[no-untyped-def]
    body = response.json()
    assert set(body) == {"type", "message", "detail"}
    assert response.headers["x-road-error"] == body["type"]
    return str(body["type"])


async def test_gateway_round_trip_and_every_error_type_on_each_broker_and_store(
    broker_url: str, store_url: str
) -> None:
    # Given a hub on this broker and store, in front of a real backend
    async with (
        running_backend() as backend,
        running_hub(hub_config(backend.url, broker_url=broker_url, store_url=store_url)) as running,
    ):
        http = running.http
        # When a member calls an allowed service
        response = await http.post(
            f"{ECHO}/a/b?x=1&x=2",
            content=b"k" * 1024,
            headers=running.headers(**{"X-Road-Id": "msg-1", "X-Trace": "t1"}),
        )
        # Then the backend saw the request and the client gets its answer with the X-Road headers
        assert response.status_code == 200, response.text
        assert response.json() == {"path": "/a/b", "size": 1024, "method": "POST", "query": {"x": "2"}}
        assert response.headers["x-road-id"] == "msg-1"
        assert response.headers["x-road-client"] == CLIENT
        assert response.headers["x-road-service"] == f"{PROVIDER}/echo/v1"
        assert len(base64.b64decode(response.headers["x-road-request-hash"])) == 64
        assert response.headers["x-backend"] == "yes"
        seen = backend.calls[-1]
        assert seen["query"] == "x=1&x=2"
        assert seen["headers"]["x-road-client"] == CLIENT and seen["headers"]["x-road-id"] == "msg-1"
        assert seen["headers"]["x-trace"] == "t1"
        assert "x-api-key" not in seen["headers"], "the hub's credentials must not reach the backend"

        # And every error type has its status
        assert (
            error_type(await http.get(f"/r1/{PROVIDER}/nothing/v1", headers=running.headers()))
            == "Client.UnknownService"
        )
        assert (await http.get(f"/r1/{PROVIDER}/nothing/v1", headers=running.headers())).status_code == 404
        r = await http.get(ECHO, headers={"X-Api-Key": KEY})
        assert (r.status_code, error_type(r)) == (400, "Client.BadRequest")
        r = await http.get(ECHO, headers=running.headers(key="wrong"))
        assert (r.status_code, error_type(r)) == (401, "Client.Unauthenticated")
        r = await http.get(f"/r1/{PROVIDER}/private/v1", headers=running.headers())
        assert (r.status_code, error_type(r)) == (403, "Client.AccessDenied")
        r = await http.post(ECHO, content=b"x" * (64 * 1024 + 1), headers=running.headers())
        assert (r.status_code, error_type(r)) == (413, "Client.RequestTooLarge")
        r = await http.get(f"/r1/{PROVIDER}/down/v1", headers=running.headers())
        assert (r.status_code, error_type(r)) == (502, "Server.ServerProxy.BackendUnavailable")
        backend.delay = 1.5
        r = await http.get(ECHO, headers=running.headers())
        assert (r.status_code, error_type(r)) == (504, "Server.ServerProxy.BackendTimeout")
        backend.delay = 0

        # And the store holds one exchange record per request
        await running.hub.exchange_log.flush()
        records = await running.hub.store.exchanges(limit=50)
        assert any(
            r["message_id"] == "msg-1" and r["status"] == 200 and r["request_bytes"] == 1024 for r in records
        )
        assert {r["status"] for r in records} >= {200, 401, 403, 404, 413, 502, 504}


async def test_gateway_passes_backend_4xx_back_unchanged(tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with running_embedded(tmp_path) as (_backend, running):
        response = await running.http.get(f"{ECHO}/../missing/1", headers=running.headers())
        response = await running.http.get(f"/r1/{PROVIDER}/plain/missing/1", headers=running.headers())
        assert response.status_code == 404
        assert response.json() == {"error": "no such record"}
        assert "x-road-error" not in response.headers


async def test_gateway_retries_a_flaky_backend_then_answers(tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with running_embedded(tmp_path) as (backend, running):
        backend.fail_next = 1
        response = await running.http.get(ECHO, headers=running.headers())
        assert response.status_code == 200
        assert len(backend.calls) == 2


async def test_gateway_refuses_malformed_paths_and_ids(tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with running_embedded(tmp_path) as (backend, running):
        r = await running.http.get("/r1/VN/GOV/only-three", headers=running.headers())
        assert (r.status_code, error_type(r)) == (400, "Client.BadRequest")
        assert "INSTANCE/CLASS/MEMBER/SUBSYSTEM" in r.json()["message"]
        r = await running.http.get(ECHO, headers=running.headers(client="VN/GOV/bad id"))
        assert (r.status_code, error_type(r)) == (400, "Client.BadRequest")
        assert "X-Road-Client" in r.json()["message"]
        r = await running.http.get(ECHO, headers={"X-Road-Client": CLIENT})
        assert (r.status_code, error_type(r)) == (401, "Client.Unauthenticated")
        r = await running.http.get(ECHO, headers=running.headers(**{"X-Road-Id": "x" * 200}))
        assert (r.status_code, error_type(r)) == (400, "Client.BadRequest")
        assert not backend.calls, "nothing refused may reach the backend"


async def test_gateway_metadata_lists_and_filters_by_acl(tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with running_embedded(tmp_path) as (_backend, running):
        listed = (await running.http.get(f"/r1/{PROVIDER}/listMethods", headers=running.headers())).json()[
            "service"
        ]
        allowed = (
            await running.http.get(f"/r1/{PROVIDER}/allowedMethods", headers=running.headers())
        ).json()["service"]
        other = (
            await running.http.get(
                f"/r1/{PROVIDER}/allowedMethods", headers=running.headers(OTHER_CLIENT, OTHER_KEY)
            )
        ).json()["service"]
        assert {s["service_code"] for s in listed} == {"echo", "plain", "down", "private"}
        assert {s["service_code"] for s in allowed} == {"echo", "plain", "down"}
        assert [s["service_code"] for s in other] == ["private"]
        r = await running.http.get(f"/r1/{PROVIDER}/listMethods")
        assert r.status_code == 400


async def test_gateway_health_metrics_and_maintenance(tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with running_embedded(tmp_path) as (_backend, running):
        health = await running.http.get("/healthz")
        assert health.status_code == 200 and health.json()["checks"] == {"broker": True, "store": True}
        await running.http.get(ECHO, headers=running.headers())
        await running.http.get(ECHO, headers=running.headers(key="bad"))
        metrics = (await running.http.get("/metrics")).text
        service = f'service="{PROVIDER}/echo/v1"'
        assert f'lgsp_requests_total{{{service},status="200"}} 1.0' in metrics
        assert f'lgsp_errors_total{{{service},type="Client.Unauthenticated"}} 1.0' in metrics
        assert f"lgsp_request_duration_seconds_count{{{service}}} 2.0" in metrics
        # When an operator switches maintenance on (shared through the store)
        await running.hub.store.set_flag("maintenance", "on")
        assert (await running.http.get("/healthz")).status_code == 503
        r = await running.http.get(ECHO, headers=running.headers())
        assert (r.status_code, error_type(r)) == (503, "Server.ClientProxy.Maintenance")
        await running.hub.store.set_flag("maintenance", "off")
        assert (await running.http.get("/healthz")).status_code == 200


async def test_gateway_without_workers_answers_504_on_timeout(tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = hub_config(
        "http://127.0.0.1:9",
        broker_url="embedded://",
        store_url=f"sqlite+aiosqlite:///{tmp_path}/h.db",
        gateway={"request_timeout": 0.3},
    )
    async with running_hub(config, workers=False) as running:
        r = await running.http.get(ECHO, headers=running.headers())
        assert (r.status_code, error_type(r)) == (504, "Server.ClientProxy.Timeout")


async def test_gateway_handles_50_concurrent_requests(broker_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with (
        running_backend() as backend,
        running_hub(
            hub_config(backend.url, broker_url=broker_url, store_url=f"sqlite+aiosqlite:///{tmp_path}/h.db")
        ) as running,
    ):
        bodies = [json.dumps({"n": i}).encode() for i in range(50)]
        responses = await asyncio.gather(
            *[
                running.http.post(f"{ECHO}/n{i}", content=b, headers=running.headers())
                for i, b in enumerate(bodies)
            ]
        )
        assert [r.json()["path"] for r in responses] == [f"/n{i}" for i in range(50)]
        assert len(backend.calls) == 50


@pytest.mark.parametrize("payload", [b"", b"{}", "xin chào".encode()])
async def test_gateway_forwards_bodies_byte_for_byte(payload: bytes, tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with running_embedded(tmp_path) as (backend, running):
        r = await running.http.put(
            f"{ECHO}/doc",
            content=payload,
            headers=running.headers(**{"Content-Type": "text/plain; charset=utf-8"}),
        )
        assert r.status_code == 200
        assert backend.calls[-1]["body"] == payload


async def test_store_reads_a_flag_once_for_many_concurrent_readers(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import event

    from hub.store import Store

    store = Store.from_url(f"sqlite+aiosqlite:///{tmp_path}/flags.db")
    await store.migrate()
    await store.set_flag("maintenance", "off")
    queries: list[str] = []
    event.listen(store.engine.sync_engine, "before_cursor_execute", lambda *a: queries.append(a[2]))
    # When fifty requests find the cached flag expired at the same moment
    values = await asyncio.gather(*[store.get_flag("maintenance", max_age=0) for _ in range(50)])
    # Then they share one query and all read the same value
    assert values == ["off"] * 50
    assert sum("hub_flags" in q for q in queries) == 1
    await store.close()


async def test_gateway_answers_an_unexpected_failure_with_a_typed_500_and_keeps_serving(  # type: ignore[no-untyped-def]
    tmp_path, monkeypatch
) -> None:
    # Given a hub whose broker fails with an error nobody foresaw on the next request
    async with running_embedded(tmp_path) as (_backend, running):
        real_request = running.hub.broker.request
        calls = 0

        async def failing_once(*args, **kwargs):  # type: ignore[no-untyped-def]
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("boom")
            return await real_request(*args, **kwargs)

        monkeypatch.setattr(running.hub.broker, "request", failing_once)
        # When a member calls a service
        response = await running.http.post(ECHO, content=b"x", headers=running.headers())
        # Then it gets the internal-error type as JSON, not a plain-text page, and the next call works
        assert response.status_code == 500
        assert error_type(response) == "Server.ServerProxy.InternalError"
        assert "boom" not in response.text, "internal details stay in the log"
        assert (await running.http.post(ECHO, content=b"x", headers=running.headers())).status_code == 200


async def test_gateway_routes_other_paths_and_methods_past_the_r1_handler(tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with running_embedded(tmp_path) as (backend, running):
        # An r1 path with a method REST r1 does not define is refused by the router, not handled
        traced = await running.http.request("TRACE", ECHO, headers=running.headers())
        assert traced.status_code in (404, 405) and "x-road-id" not in traced.headers
        assert backend.calls == []
        # Paths outside /r1/ reach their own routes, or none
        assert (await running.http.get("/healthz")).status_code == 200
        assert (await running.http.get("/r1")).status_code == 404
        assert (await running.http.get("/nothing/here")).status_code == 404
        # The gateway does not advertise its server software
        assert "server" not in (await running.http.get("/healthz")).headers
