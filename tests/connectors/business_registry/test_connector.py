"""BusinessRegistryConnector called directly against the sandbox running as a real server."""

import asyncio
import gzip
import json
import time
import uuid
from collections.abc import Callable

import httpx
import pytest

from connectors.business_registry import (
    BusinessRegistryConnector,
    BusinessRegistrySettings,
    Enterprise,
    EnterpriseSearchResult,
)
from connectors.business_registry.connector import STALE_WARNING
from connectors.business_registry.data import Enterprise as Record
from connectors.business_registry.hub_config import business_fragment
from connectors.business_registry.sandbox import (
    SANDBOX_CREDENTIALS,
    encode_credentials,
    enterprise_record,
    envelope,
)
from hub.cache import MemoryCache
from hub.connector import ConnectorContext, ConnectorRequest
from hub.errors import (
    BackendAuthFailure,
    BackendRejected,
    BackendTimeout,
    BackendUnavailable,
    ConfigError,
    InvalidInput,
    NotFound,
    RegistryError,
)
from hub.registry import ConnectorRegistry, bind_services
from hub.settings import load_settings
from tests.conftest import free_port
from tests.connectors.business_registry.conftest import (
    CLIENT,
    SERVICE,
    MakeConnector,
    Sandbox,
    connector_settings,
    lookup,
    search,
)


def _with_branches(sandbox: Sandbox) -> Record:
    return next(e for e in sandbox.registry if e.branches)


# -- look-up ------------------------------------------------------------------------------------


async def test_lookup_found_returns_the_canonical_enterprise(
    sandbox: Sandbox, make_connector: MakeConnector
) -> None:
    # Given an enterprise of the synthetic registry
    record = _with_branches(sandbox)
    connector = make_connector()
    # When it is looked up by its 10-digit code
    reply = await connector.call(lookup(record.code))
    # Then the reply is the canonical enterprise, fields mapped from the platform's
    enterprise = Enterprise.model_validate_json(reply.body)
    assert reply.status == 200
    assert enterprise.enterprise_code == record.code
    assert enterprise.name == record.name
    assert enterprise.status == record.status
    assert enterprise.status_name == record.status_name
    assert enterprise.founding_date == record.founding_date
    assert enterprise.charter_capital == record.capital
    assert enterprise.legal_representative is not None
    assert enterprise.legal_representative.full_name == record.representative.full_name
    assert enterprise.main_business_line is not None
    assert enterprise.main_business_line.code == record.business_line
    assert [b.code for b in enterprise.branches] == [b.code for b in record.branches]
    assert enterprise.parent_enterprise_code is None


async def test_lookup_branch_code_returns_the_branch(sandbox: Sandbox, make_connector: MakeConnector) -> None:
    # Given a branch (10-3 code) of an enterprise
    record = _with_branches(sandbox)
    branch = record.branches[0]
    # When the branch code is looked up
    reply = await make_connector().call(lookup(branch.code))
    # Then the branch comes back, pointing at its enterprise
    enterprise = Enterprise.model_validate_json(reply.body)
    assert enterprise.enterprise_code == branch.code
    assert enterprise.parent_enterprise_code == record.code
    assert enterprise.name == branch.name
    assert enterprise.charter_capital is None


async def test_lookup_accepts_the_code_as_query_parameter(
    sandbox: Sandbox, make_connector: MakeConnector
) -> None:
    # Given a GET-style request with the code in the query string
    record = sandbox.registry.enterprise(10)
    request = ConnectorRequest(
        "enterprise-lookup", SERVICE, CLIENT, "m", method="GET", query=(("enterprise_code", record.code),)
    )
    # When it is called, Then the enterprise is found
    reply = await make_connector().call(request)
    assert json.loads(reply.body)["enterprise_code"] == record.code


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("0100233480", "check_digit"),  # last digit wrong
        ("0100233488-000", "component"),  # branch 000 does not exist
        ("010023348", "format"),  # 9 digits
        ("0100233488001", "format"),  # 13 digits without the dash
        ("01002334AB", "format"),
    ],
)
async def test_lookup_bad_code_is_refused_before_leaving_the_hub(
    sandbox: Sandbox, make_connector: MakeConnector, code: str, reason: str
) -> None:
    # Given a code that is not a valid enterprise or branch code
    connector = make_connector()
    # When it is looked up
    with pytest.raises(InvalidInput) as caught:
        await connector.call(lookup(code))
    # Then the field and reason are named, and the sandbox saw nothing
    assert caught.value.field == "enterprise_code"
    assert caught.value.detail["reason"] == reason
    assert caught.value.status_code == 400
    assert sandbox.state.requests == 0


async def test_lookup_unknown_code_raises_not_found(sandbox: Sandbox, make_connector: MakeConnector) -> None:
    # Given a valid tax code the synthetic registry does not hold
    code = "0100233488"
    assert sandbox.registry.lookup(code) is None
    # When it is looked up, Then NotFound carries the platform's status
    with pytest.raises(NotFound) as caught:
        await make_connector().call(lookup(code))
    assert caught.value.status_code == 404
    assert caught.value.detail["platform_status"] == 404
    assert sandbox.state.requests == 1


async def test_lookup_wrong_credentials_raise_auth_failure(
    sandbox: Sandbox, make_connector: MakeConnector
) -> None:
    # Given a connector with a wrong secret key
    connector = make_connector(secret_key="not-the-secret")
    # When it looks an enterprise up, Then the platform's 401 becomes BackendAuthFailure
    with pytest.raises(BackendAuthFailure) as caught:
        await connector.call(lookup(sandbox.registry.code_of(0)))
    assert caught.value.detail["platform_status"] == 401
    assert caught.value.connector == "business_registry"


async def test_lookup_platform_error_raises_backend_unavailable(
    sandbox: Sandbox, make_connector: MakeConnector
) -> None:
    # Given a platform answering every call with 500
    sandbox.state.error_rate = 1.0
    # When a look-up is made, Then it is BackendUnavailable with the platform status
    with pytest.raises(BackendUnavailable) as caught:
        await make_connector().call(lookup(sandbox.registry.code_of(1)))
    assert caught.value.detail["platform_status"] == 500


async def test_lookup_slow_platform_raises_backend_timeout(
    sandbox: Sandbox, make_connector: MakeConnector
) -> None:
    # Given a platform slower than the connector's read timeout
    sandbox.state.latency_ms = 400
    connector = make_connector(read_timeout=0.1)
    # When a look-up is made, Then it times out as BackendTimeout
    started = time.monotonic()
    with pytest.raises(BackendTimeout) as caught:
        await connector.call(lookup(sandbox.registry.code_of(2)))
    assert time.monotonic() - started < 0.4
    assert caught.value.status_code == 504
    assert caught.value.detail["reason"] == "ReadTimeout"


async def test_lookup_refused_connection_raises_backend_unavailable(sandbox: Sandbox) -> None:
    # Given a connector pointed at a port nobody listens on
    settings = connector_settings(f"http://127.0.0.1:{free_port()}")
    connector = BusinessRegistryConnector.create(settings, ConnectorContext(instance="refused"))
    try:
        # When a look-up is made, Then it is BackendUnavailable (retried by the worker)
        with pytest.raises(BackendUnavailable) as caught:
            await connector.call(lookup(sandbox.registry.code_of(3)))
        assert caught.value.detail["reason"] == "ConnectError"
    finally:
        await connector.close()


async def test_lookup_32_concurrent_calls_all_succeed(
    sandbox: Sandbox, make_connector: MakeConnector
) -> None:
    # Given 32 different enterprises
    codes = [sandbox.registry.code_of(i) for i in range(100, 132)]
    connector = make_connector()
    # When they are looked up concurrently
    replies = await asyncio.wait_for(asyncio.gather(*(connector.call(lookup(c)) for c in codes)), 20)
    # Then every answer is the right one and each reached the sandbox once
    assert [json.loads(r.body)["enterprise_code"] for r in replies] == codes
    assert sandbox.state.by_endpoint["lookup"] == 32


def _registry_twin(
    sandbox: Sandbox, seen: list[httpx.Request], *, gzipped: bool = False
) -> httpx.MockTransport:
    """The sandbox registry's look-ups as an in-memory transport, recording the requests it gets."""

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        found = sandbox.registry.lookup(request.url.params["MaSoDoanhNghiep"])
        assert isinstance(found, Record)
        content = json.dumps(envelope(200, "SUCCESS", "Thành công", enterprise_record(found))).encode()
        headers = {"content-encoding": "gzip"} if gzipped else {}
        # A stream, not content=...: ClientPool.send reads the raw stream, which content= pre-reads.
        return httpx.Response(
            200, headers=headers, stream=httpx.ByteStream(gzip.compress(content) if gzipped else content)
        )

    return httpx.MockTransport(answer)


def _twin_connector(transport_factory: Callable[[], httpx.MockTransport]) -> BusinessRegistryConnector:
    settings = BusinessRegistrySettings.model_validate(connector_settings("http://registry.invalid"))
    context = ConnectorContext(instance=f"twin-{uuid.uuid4().hex[:6]}")
    return BusinessRegistryConnector(settings, context, transport_factory=transport_factory)


async def test_lookup_concurrent_calls_share_the_instance_one_transport(sandbox: Sandbox) -> None:
    # Given a connector on an in-memory registry, counting how often a transport is built
    built: list[httpx.MockTransport] = []
    seen: list[httpx.Request] = []

    def transport() -> httpx.MockTransport:
        built.append(_registry_twin(sandbox, seen))
        return built[-1]

    connector = _twin_connector(transport)
    codes = [sandbox.registry.code_of(i) for i in range(300, 332)]
    try:
        # When 32 look-ups are made at once
        replies = await asyncio.gather(*(connector.call(lookup(c)) for c in codes))
    finally:
        await connector.close()
    # Then all went through one transport, each with the LGSP auth header, and got its own answer
    assert len(built) == 1
    assert len(seen) == 32
    assert {r.headers["authorization"] for r in seen} == {encode_credentials(SANDBOX_CREDENTIALS)}
    assert [json.loads(r.body)["enterprise_code"] for r in replies] == codes


async def test_lookup_gzip_answer_is_decoded(sandbox: Sandbox) -> None:
    # Given a registry that compresses its answers
    seen: list[httpx.Request] = []
    connector = _twin_connector(lambda: _registry_twin(sandbox, seen, gzipped=True))
    code = sandbox.registry.code_of(340)
    try:
        # When a look-up is made
        reply = await connector.call(lookup(code))
    finally:
        await connector.close()
    # Then the connector asked for gzip and read the compressed answer
    assert seen[0].headers["accept-encoding"] == "gzip, deflate"
    assert json.loads(reply.body)["enterprise_code"] == code


async def test_lookup_max_connections_bounds_the_calls_in_flight(
    sandbox: Sandbox, make_connector: MakeConnector
) -> None:
    # Given a platform taking 100 ms per call and a connector allowed two connections
    sandbox.state.latency_ms = 100
    connector = make_connector(max_connections=2)
    codes = [sandbox.registry.code_of(i) for i in range(400, 406)]
    # When six look-ups are made at once
    started = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(connector.call(lookup(c)) for c in codes)), 10)
    # Then they reached the platform two at a time: three rounds of 100 ms
    assert time.monotonic() - started >= 0.29
    assert sandbox.state.by_endpoint["lookup"] == 6


# -- input and settings ---------------------------------------------------------------------------


async def test_call_body_not_json_is_invalid_input(sandbox: Sandbox, make_connector: MakeConnector) -> None:
    request = ConnectorRequest("enterprise-lookup", SERVICE, CLIENT, "m", body=b"{not json")
    with pytest.raises(InvalidInput) as caught:
        await make_connector().call(request)
    assert caught.value.field == "body"


async def test_call_missing_field_is_invalid_input(sandbox: Sandbox, make_connector: MakeConnector) -> None:
    request = ConnectorRequest("enterprise-lookup", SERVICE, CLIENT, "m", body=b'{"code": "0100233488"}')
    with pytest.raises(InvalidInput) as caught:
        await make_connector().call(request)
    assert caught.value.field in {"enterprise_code", "code"}
    assert sandbox.state.requests == 0


async def test_call_unknown_operation_is_invalid_input(
    sandbox: Sandbox, make_connector: MakeConnector
) -> None:
    request = ConnectorRequest("enterprise-delete", SERVICE, CLIENT, "m", body=b"{}")
    with pytest.raises(InvalidInput) as caught:
        await make_connector().call(request)
    assert caught.value.field == "operation"


def test_create_unknown_setting_raises_config_error_naming_it(sandbox: Sandbox) -> None:
    with pytest.raises(ConfigError) as caught:
        BusinessRegistryConnector.create(
            connector_settings(sandbox.url, cache_tll=5), ConnectorContext(instance="x")
        )
    assert caught.value.key == "cache_tll"


def test_create_pool_clients_from_an_older_release_raises_config_error_naming_it() -> None:
    # Given settings still carrying pool_clients (gone: one HTTP client per connector instance now)
    settings = connector_settings("http://127.0.0.1:9", pool_clients=8)
    # When the connector is created, Then ConfigError names the key
    with pytest.raises(ConfigError, match="'pool_clients'") as caught:
        BusinessRegistryConnector.create(settings, ConnectorContext(instance="x"))
    assert caught.value.key == "pool_clients"


def test_hub_config_with_pool_clients_is_refused_naming_the_key_and_where_to_fix_it() -> None:
    # Given a hub configuration written for an older release
    fragment = business_fragment("http://127.0.0.1:9", pool_clients=8)
    config = load_settings(
        data={"connectors": fragment["connectors"], "services": fragment["services"]}, environ={}
    )
    # When the hub builds its connectors, Then it refuses the key and says where to fix it
    with pytest.raises(RegistryError) as caught:
        bind_services(config, ConnectorRegistry([BusinessRegistryConnector]))
    assert "invalid settings: unknown key 'pool_clients' (known keys: base_url" in str(caught.value)
    assert "fix connectors.business-registry.settings" in str(caught.value)


def test_create_relative_base_url_raises_config_error(sandbox: Sandbox) -> None:
    with pytest.raises(ConfigError) as caught:
        BusinessRegistryConnector.create(connector_settings("/relative"), ConnectorContext(instance="x"))
    assert caught.value.key == "base_url"


def test_operations_declare_request_and_response_models() -> None:
    operations = BusinessRegistryConnector.operations
    assert set(operations) == {"enterprise-lookup", "enterprise-search"}
    assert operations["enterprise-lookup"].response_model is Enterprise
    assert operations["enterprise-search"].response_model is EnterpriseSearchResult


# -- search -------------------------------------------------------------------------------------


async def test_search_pages_are_disjoint_and_counted(sandbox: Sandbox, make_connector: MakeConnector) -> None:
    # Given a name many enterprises share, written without diacritics
    connector = make_connector()
    # When two consecutive pages are asked for
    first = EnterpriseSearchResult.model_validate_json((await connector.call(search("minh phat", 1, 5))).body)
    second = EnterpriseSearchResult.model_validate_json(
        (await connector.call(search("minh phat", 2, 5))).body
    )
    # Then both report the same total, hold page_size hits each, and share none
    assert first.total == second.total > 10
    assert (first.page, second.page, len(first.items), len(second.items)) == (1, 2, 5, 5)
    assert not {i.enterprise_code for i in first.items} & {i.enterprise_code for i in second.items}
    assert all("MINH" in i.name and "PHÁT" in i.name for i in first.items + second.items)


async def test_search_past_the_last_page_is_empty(sandbox: Sandbox, make_connector: MakeConnector) -> None:
    result = EnterpriseSearchResult.model_validate_json(
        (await make_connector().call(search("minh phat", 10_000, 100))).body
    )
    assert result.items == [] and result.total > 0


async def test_search_page_size_over_100_is_invalid_input(
    sandbox: Sandbox, make_connector: MakeConnector
) -> None:
    with pytest.raises(InvalidInput) as caught:
        await make_connector().call(search("minh", 1, 500))
    assert caught.value.field == "page_size"
    assert sandbox.state.requests == 0


# -- cache --------------------------------------------------------------------------------------


async def test_cache_second_lookup_is_a_hit(sandbox: Sandbox, make_connector: MakeConnector) -> None:
    # Given a connector with a cache
    connector = make_connector(cache=MemoryCache())
    code = sandbox.registry.code_of(20)
    # When the same enterprise is looked up twice
    first = await connector.call(lookup(code))
    second = await connector.call(lookup(code))
    # Then the first is a miss, the second a hit from the cache, and the sandbox saw one call
    assert first.headers["X-Cache"] == "MISS"
    assert second.headers["X-Cache"] == "HIT"
    assert second.headers["Age"] == "0"
    assert second.body == first.body
    assert sandbox.state.requests == 1


async def test_cache_no_cache_header_bypasses_and_refreshes(
    sandbox: Sandbox, make_connector: MakeConnector
) -> None:
    # Given a cached look-up
    cache = MemoryCache()
    connector = make_connector(cache=cache)
    code = sandbox.registry.code_of(21)
    await connector.call(lookup(code))
    key = next(iter(cache._entries))
    stored_first = (await cache.get(key)).stored_at  # type: ignore[union-attr]
    # When the client asks with Cache-Control: no-cache
    reply = await connector.call(lookup(code, {"cache-control": "no-cache"}))
    # Then the registry is called again and the entry refreshed
    assert reply.headers["X-Cache"] == "BYPASS"
    assert sandbox.state.requests == 2
    assert (await cache.get(key)).stored_at > stored_first  # type: ignore[union-attr]


async def test_cache_stale_entry_served_when_platform_down(
    sandbox: Sandbox, make_connector: MakeConnector
) -> None:
    # Given an entry past its TTL but within max-stale, and the platform down
    connector = make_connector(cache=MemoryCache(), cache_ttl=0.1, cache_max_stale=60)
    code = sandbox.registry.code_of(22)
    fresh = await connector.call(lookup(code))
    await asyncio.sleep(0.15)
    sandbox.state.down = True
    # When it is looked up again
    reply = await connector.call(lookup(code))
    # Then the stale answer is served, marked stale
    assert reply.body == fresh.body
    assert reply.headers["X-Cache"] == "STALE"
    assert reply.headers["Warning"] == STALE_WARNING
    assert int(reply.headers["Age"]) >= 0
    assert sandbox.state.requests == 2


async def test_cache_stale_beyond_max_stale_raises(sandbox: Sandbox, make_connector: MakeConnector) -> None:
    # Given an entry older than TTL + max-stale and the platform down
    connector = make_connector(cache=MemoryCache(), cache_ttl=0.05, cache_max_stale=0.05)
    code = sandbox.registry.code_of(23)
    await connector.call(lookup(code))
    await asyncio.sleep(0.15)
    sandbox.state.down = True
    # When it is looked up, Then the failure comes through
    with pytest.raises(BackendUnavailable):
        await connector.call(lookup(code))


async def test_cache_no_cache_while_platform_down_raises(
    sandbox: Sandbox, make_connector: MakeConnector
) -> None:
    # Given a fresh entry and the platform down
    connector = make_connector(cache=MemoryCache())
    code = sandbox.registry.code_of(24)
    await connector.call(lookup(code))
    sandbox.state.down = True
    # When the client insists on a fresh answer, Then it gets the failure, not the cache
    with pytest.raises(BackendUnavailable):
        await connector.call(lookup(code, {"Cache-Control": "no-cache"}))


async def test_cache_not_found_is_not_cached(sandbox: Sandbox, make_connector: MakeConnector) -> None:
    connector = make_connector(cache=MemoryCache())
    for _ in range(2):
        with pytest.raises(NotFound):
            await connector.call(lookup("0100233488"))
    assert sandbox.state.requests == 2


async def test_cache_search_pages_are_cached_separately(
    sandbox: Sandbox, make_connector: MakeConnector
) -> None:
    connector = make_connector(cache=MemoryCache())
    one = await connector.call(search("hoang long", 1, 3))
    two = await connector.call(search("hoang long", 2, 3))
    again = await connector.call(search("hoang long", 1, 3))
    assert (one.headers["X-Cache"], two.headers["X-Cache"], again.headers["X-Cache"]) == (
        "MISS",
        "MISS",
        "HIT",
    )
    assert again.body == one.body and two.body != one.body


# -- 429 ----------------------------------------------------------------------------------------


async def test_429_short_retry_after_is_honoured_then_succeeds(
    sandbox: Sandbox, make_connector: MakeConnector
) -> None:
    # Given a platform quota of 2 calls per second, already used up
    sandbox.state.rate_limit = 2
    connector = make_connector()
    await connector.call(lookup(sandbox.registry.code_of(30)))
    await connector.call(lookup(sandbox.registry.code_of(31)))
    # When a third call is made at once
    started = time.monotonic()
    reply = await connector.call(lookup(sandbox.registry.code_of(32)))
    # Then the connector waited out the Retry-After (1 s) and got the answer on its retry
    assert reply.status == 200
    assert 0.9 <= time.monotonic() - started < 2.0
    assert sandbox.state.by_outcome[429] == 1


async def test_429_retry_after_beyond_the_wait_budget_is_unavailable(
    sandbox: Sandbox, make_connector: MakeConnector
) -> None:
    # Given a platform that answers 429 with Retry-After 5 s, longer than the connector may wait (1 s)
    sandbox.state.rate_limit = 1
    sandbox.state.retry_after = 5
    connector = make_connector(rate_limit_timeout=1.0)
    await connector.call(lookup(sandbox.registry.code_of(33)))
    # When another call is made, Then it fails fast as BackendUnavailable (503) with the Retry-After
    started = time.monotonic()
    with pytest.raises(BackendUnavailable) as caught:
        await connector.call(lookup(sandbox.registry.code_of(34)))
    assert time.monotonic() - started < 0.5
    assert caught.value.status_code == 503
    assert caught.value.detail["reason"] == "rate_limited"
    # And the pause holds later calls back without reaching the platform
    with pytest.raises(BackendUnavailable):
        await connector.call(lookup(sandbox.registry.code_of(35)))
    assert sandbox.state.requests == 2


async def test_429_retry_after_beyond_the_maximum_is_a_rejection(
    sandbox: Sandbox, make_connector: MakeConnector
) -> None:
    # Given a platform quota exhausted for an hour (Retry-After 3600 s > retry_after_max 60 s)
    sandbox.state.rate_limit = 1
    sandbox.state.retry_after = 3600
    connector = make_connector()
    await connector.call(lookup(sandbox.registry.code_of(36)))
    # When another call is made, Then it is passed back as BackendRejected with status 429
    with pytest.raises(BackendRejected) as caught:
        await connector.call(lookup(sandbox.registry.code_of(37)))
    assert caught.value.status_code == 429
    assert caught.value.detail["retry_after"] == 3600


async def test_rate_limit_setting_spaces_calls_out(sandbox: Sandbox, make_connector: MakeConnector) -> None:
    # Given a connector limited to 5 calls per second
    connector = make_connector(rate_limit_per_second=5)
    codes = [sandbox.registry.code_of(i) for i in range(40, 47)]
    # When 7 calls are made at once
    started = time.monotonic()
    await asyncio.gather(*(connector.call(lookup(c)) for c in codes))
    # Then the last two waited for the next one-second window
    assert time.monotonic() - started >= 0.9
    assert sandbox.state.by_outcome[200] == 7


async def test_rate_limit_wait_beyond_timeout_is_unavailable(
    sandbox: Sandbox, make_connector: MakeConnector
) -> None:
    # Given a connector limited to 1 call per second that may wait 0.2 s
    connector = make_connector(rate_limit_per_second=1, rate_limit_timeout=0.2)
    await connector.call(lookup(sandbox.registry.code_of(50)))
    # When a second call comes at once, Then it is refused before leaving the hub
    with pytest.raises(BackendUnavailable) as caught:
        await connector.call(lookup(sandbox.registry.code_of(51)))
    assert caught.value.detail["reason"] == "rate_limited"
    assert sandbox.state.requests == 1


async def test_close_twice_is_harmless(sandbox: Sandbox) -> None:
    connector = BusinessRegistryConnector.create(
        connector_settings(sandbox.url), ConnectorContext(instance=f"c-{uuid.uuid4().hex[:6]}")
    )
    await connector.close()
    await connector.close()
