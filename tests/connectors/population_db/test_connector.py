"""The connector against the sandbox as a real server: canonical JSON and national SOAP requests."""

import asyncio
import json
import time
from dataclasses import replace
from typing import Any

import httpx
import pytest

from connectors.population_db import PopulationDbConnector
from connectors.population_db._soap import NS, body_payload, read_fault
from hub.connector import ConnectorContext
from hub.errors import (
    BackendAuthFailure,
    BackendRejected,
    BackendTimeout,
    BackendUnavailable,
    ConfigError,
    InvalidInput,
    NotFound,
)
from signing import parse_xml
from tests.conftest import free_port
from tests.connectors.population_db.conftest import (
    RunningSandbox,
    StartSandbox,
    json_request,
    national_envelope,
    settings,
    soap_request,
)

LOOKUP, VERIFY = "citizen-lookup", "citizen-verify"


def _body(**fields: Any) -> str:
    return json.dumps(fields, ensure_ascii=False)


async def test_connector_lookup_found_returns_the_canonical_citizen(
    connector: PopulationDbConnector, sandbox: RunningSandbox
) -> None:
    # Given a child of a household in the sandbox population
    population = sandbox.sandbox.population
    citizen = population.citizen(17)
    # When it is looked up by id, name and birth date
    reply = await connector.call(
        json_request(
            LOOKUP,
            _body(
                personal_id=citizen.personal_id,
                full_name=citizen.full_name,
                birth_date=citizen.birth_date.isoformat(),
            ),
        )
    )
    # Then the canonical record matches the citizen, parents included
    assert (reply.status, reply.content_type) == (200, "application/json")
    record = json.loads(reply.body)
    assert record["personal_id"] == citizen.personal_id
    assert record["full_name"] == citizen.full_name
    assert record["birth_date"] == citizen.birth_date.isoformat()
    assert record["gender"] == {"1": "male", "2": "female"}[citizen.sex]
    assert record["household_id"] == citizen.household_id
    assert citizen.father is not None
    assert record["father"] == {
        "personal_id": citizen.father.personal_id,
        "full_name": citizen.father.full_name,
    }
    assert record["spouse"] is None
    # And the father's id resolves to his own record
    father = json.loads(
        (await connector.call(json_request(LOOKUP, _body(personal_id=citizen.father.personal_id)))).body
    )
    assert father["full_name"] == citizen.father.full_name
    assert father["spouse"]["personal_id"] == record["mother"]["personal_id"]


async def test_connector_lookup_unknown_id_is_not_found(connector: PopulationDbConnector) -> None:
    # Given a well-formed id nobody has
    # When it is looked up
    # Then NotFound carries the national fault
    with pytest.raises(NotFound) as caught:
        await connector.call(json_request(LOOKUP, _body(personal_id="001099999999")))
    assert caught.value.detail["code"] == "KHONG_TIM_THAY"
    assert caught.value.connector == "population_db"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({}, True),
        ({"full_name": "Nguyễn Văn Khác"}, False),
        ({"birth_date": "1901"}, False),
        ({"year": True}, True),
    ],
)
async def test_connector_verify_answers_exists(
    connector: PopulationDbConnector, sandbox: RunningSandbox, change: dict[str, Any], expected: bool
) -> None:
    # Given a citizen and a name/birth date that match or not
    citizen = sandbox.sandbox.population.citizen(8)
    fields = {
        "personal_id": citizen.personal_id,
        "full_name": citizen.full_name,
        "birth_date": str(citizen.birth_date.year)
        if change.pop("year", False)
        else citizen.birth_date.isoformat(),
    }
    fields.update(change)
    # When they are verified
    reply = await connector.call(json_request(VERIFY, _body(**fields)))
    # Then exists says whether they match
    assert json.loads(reply.body) == {"exists": expected}


@pytest.mark.parametrize(
    ("operation", "fields", "field"),
    [
        (LOOKUP, {"personal_id": "12345"}, "personal_id"),
        (LOOKUP, {"personal_id": "999096001005"}, "personal_id"),
        (
            VERIFY,
            {"personal_id": "001096001005", "full_name": "An", "birth_date": "1996-13-01"},
            "birth_date",
        ),
        (VERIFY, {"personal_id": "001096001005", "full_name": " ", "birth_date": "1996"}, "full_name"),
        (VERIFY, {"personal_id": "001096001005", "full_name": "An"}, "birth_date"),
    ],
)
async def test_connector_invalid_input_is_refused_before_any_http(
    connector: PopulationDbConnector,
    sandbox: RunningSandbox,
    operation: str,
    fields: dict[str, str],
    field: str,
) -> None:
    # Given an invalid canonical query
    # When it is called
    with pytest.raises(InvalidInput) as caught:
        await connector.call(json_request(operation, _body(**fields)))
    # Then the field is named and the sandbox received nothing
    assert caught.value.field == field
    assert sandbox.sandbox.stats.requests == 0


async def test_connector_unknown_operation_and_bad_body_are_invalid(connector: PopulationDbConnector) -> None:
    # Given an unknown operation, a body that is not JSON, and an unsupported content type
    request = json_request(LOOKUP, "{}")
    cases = [
        (replace(request, operation="citizen-delete"), "operation"),
        (json_request(LOOKUP, b"\xff not json"), "body"),
        (replace(request, content_type="text/csv"), "content_type"),
    ]
    for bad, field in cases:
        # When each is called
        # Then InvalidInput names the field
        with pytest.raises(InvalidInput) as caught:
            await connector.call(bad)
        assert caught.value.field == field


async def test_connector_wrong_secret_is_backend_auth_failure(sandbox: RunningSandbox) -> None:
    # Given a connector with a secret the sandbox does not know
    connector = PopulationDbConnector(settings(sandbox.url, secret="not-the-secret"))
    try:
        # When it calls
        # Then the sandbox's authentication fault becomes BackendAuthFailure
        with pytest.raises(BackendAuthFailure) as caught:
            await connector.call(
                json_request(LOOKUP, _body(personal_id=sandbox.sandbox.population.personal_id(1)))
            )
        assert caught.value.detail["faultcode"] == "Client.Authentication"
    finally:
        await connector.close()


async def test_connector_slow_sandbox_is_backend_timeout(start_sandbox: StartSandbox) -> None:
    # Given a sandbox slower than the connector's timeout
    sandbox = await start_sandbox(latency_ms=800)
    connector = PopulationDbConnector(settings(sandbox.url, timeout_seconds=0.2))
    try:
        # When a lookup is made
        # Then BackendTimeout is raised
        with pytest.raises(BackendTimeout):
            await connector.call(
                json_request(LOOKUP, _body(personal_id=sandbox.sandbox.population.personal_id(1)))
            )
    finally:
        await connector.close()


async def test_connector_hanging_sandbox_is_backend_timeout(start_sandbox: StartSandbox) -> None:
    # Given a sandbox that hangs on every request
    sandbox = await start_sandbox(timeout_rate=1.0, hang_seconds=5)
    connector = PopulationDbConnector(settings(sandbox.url, timeout_seconds=0.2))
    try:
        # When a lookup is made
        # Then BackendTimeout is raised
        with pytest.raises(BackendTimeout):
            await connector.call(
                json_request(LOOKUP, _body(personal_id=sandbox.sandbox.population.personal_id(1)))
            )
    finally:
        await connector.close()


async def test_connector_sandbox_down_is_backend_unavailable() -> None:
    # Given nothing listening at the endpoint
    connector = PopulationDbConnector(settings(f"http://127.0.0.1:{free_port()}/dancuquocgia"))
    try:
        # When a lookup is made
        # Then BackendUnavailable is raised
        with pytest.raises(BackendUnavailable):
            await connector.call(json_request(LOOKUP, _body(personal_id="001096001005")))
    finally:
        await connector.close()


async def test_connector_server_fault_is_backend_unavailable(start_sandbox: StartSandbox) -> None:
    # Given a sandbox that answers every request with a Server fault
    sandbox = await start_sandbox(error_rate=1.0)
    connector = PopulationDbConnector(settings(sandbox.url))
    try:
        # When a lookup is made
        # Then BackendUnavailable is raised
        with pytest.raises(BackendUnavailable) as caught:
            await connector.call(json_request(LOOKUP, _body(personal_id="001096001005")))
        assert caught.value.detail["faultcode"] == "Server"
    finally:
        await connector.close()


async def test_connector_duplicate_message_id_is_backend_rejected(
    connector: PopulationDbConnector, sandbox: RunningSandbox
) -> None:
    # Given a message already sent (MaYeuCau derives from the message id)
    request = json_request(
        LOOKUP, _body(personal_id=sandbox.sandbox.population.personal_id(1)), message_id="m-1"
    )
    await connector.call(request)
    # When the same message id is sent again
    # Then the national duplicate refusal is passed back as BackendRejected
    with pytest.raises(BackendRejected) as caught:
        await connector.call(request)
    assert caught.value.detail["code"] == "TRUNG_MA_YEU_CAU"


async def test_connector_soap_request_is_forwarded_and_answered_unchanged(
    connector: PopulationDbConnector, sandbox: RunningSandbox
) -> None:
    # Given a national-shape lookup, as a provincial SOAP client sends it
    citizen = sandbox.sandbox.population.citizen(5)
    # When the connector handles it
    reply = await connector.call(soap_request(LOOKUP, national_envelope(SoDinhDanh=citizen.personal_id)))
    # Then the national response envelope comes back
    assert reply.content_type.startswith("text/xml")
    payload = body_payload(parse_xml(reply.body))
    assert payload.tag == f"{{{NS}}}TraCuuThongTinCongDanResponse"
    assert payload.findtext(f"{{{NS}}}CongDan/{{{NS}}}VoChong/{{{NS}}}HoVaTen") == citizen.spouse.full_name  # type: ignore[union-attr]


async def test_connector_soap_fault_is_passed_through(connector: PopulationDbConnector) -> None:
    # Given a national-shape lookup of an id nobody has
    # When the connector handles it
    with pytest.raises(NotFound) as caught:
        await connector.call(soap_request(LOOKUP, national_envelope(SoDinhDanh="001099999999")))
    # Then NotFound carries the national fault envelope to answer unchanged
    error = caught.value
    assert error.content_type is not None and error.content_type.startswith("text/xml")
    fault = read_fault(parse_xml(error.body or b""))
    assert fault is not None and (fault.faultcode, fault.code) == ("Client.NotFound", "KHONG_TIM_THAY")


@pytest.mark.parametrize(
    ("operation", "body", "field"),
    [
        (LOOKUP, national_envelope(SoDinhDanh="12345"), "SoDinhDanh"),
        (LOOKUP, national_envelope(SoDinhDanh="003096001005"), "SoDinhDanh"),
        (LOOKUP, national_envelope(MaTichHop=None, SoDinhDanh="001096001005"), "MaTichHop"),
        (
            VERIFY,
            national_envelope("XacThucThongTinCongDan", SoDinhDanh="001096001005", HoVaTen="An"),
            "NgayThangNamSinh",
        ),
        (VERIFY, national_envelope(SoDinhDanh="001096001005"), "Body"),
        (LOOKUP, b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x "y">]><r>&x;</r>', "Envelope"),
    ],
)
async def test_connector_invalid_soap_request_is_refused_before_any_http(
    connector: PopulationDbConnector, sandbox: RunningSandbox, operation: str, body: bytes, field: str
) -> None:
    # Given a national-shape request that breaks the XSD, the id rule, the operation, or the parser
    # When the connector handles it
    with pytest.raises(InvalidInput) as caught:
        await connector.call(soap_request(operation, body))
    # Then the field is named and nothing reached the sandbox
    assert caught.value.field == field
    assert sandbox.sandbox.stats.requests == 0


async def test_connector_50_concurrent_calls_all_answer(
    connector: PopulationDbConnector, sandbox: RunningSandbox
) -> None:
    # Given 50 different citizens
    population = sandbox.sandbox.population
    ids = [population.personal_id(index) for index in range(0, 50_000, 1_000)]
    # When they are looked up concurrently
    replies = await asyncio.wait_for(
        asyncio.gather(*(connector.call(json_request(LOOKUP, _body(personal_id=pid))) for pid in ids)),
        timeout=30,
    )
    # Then each answer is the citizen asked for
    assert [json.loads(reply.body)["personal_id"] for reply in replies] == ids
    assert sandbox.sandbox.stats.requests == 50


async def test_connector_max_connections_bounds_the_calls_in_flight(start_sandbox: StartSandbox) -> None:
    # Given a sandbox taking 100 ms per call and a connector allowed two connections
    sandbox = await start_sandbox(latency_ms=100)
    connector = PopulationDbConnector(settings(sandbox.url, max_connections=2))
    ids = [sandbox.sandbox.population.personal_id(index) for index in range(0, 6_000, 1_000)]
    try:
        # When six lookups are made at once
        started = time.monotonic()
        await asyncio.wait_for(
            asyncio.gather(*(connector.call(json_request(LOOKUP, _body(personal_id=pid))) for pid in ids)),
            timeout=10,
        )
        elapsed = time.monotonic() - started
    finally:
        await connector.close()
    # Then they reached the national system two at a time: three rounds of 100 ms
    assert elapsed >= 0.29
    assert sandbox.sandbox.stats.requests == 6


def test_connector_create_validates_settings() -> None:
    # Given settings without the secret
    raw = settings("http://127.0.0.1:9/dancuquocgia").model_dump(mode="json")
    raw["api_key"] = "k"
    del raw["secret"]
    # When the connector is created from them
    # Then ConfigError names the missing key
    with pytest.raises(ConfigError) as caught:
        PopulationDbConnector.create(raw, ConnectorContext(instance="population_db"))
    assert caught.value.key == "secret"


async def test_connector_create_from_a_mapping_and_vendored_wsdl() -> None:
    # Given complete raw settings
    raw = {**settings("http://127.0.0.1:9/dancuquocgia").model_dump(), "secret": "s", "api_key": "k"}
    # When the connector is created
    connector = PopulationDbConnector.create(raw, ConnectorContext(instance="population-1"))
    # Then it exposes its operations and the vendored WSDL
    assert set(connector.operations) == {LOOKUP, VERIFY}
    assert PopulationDbConnector.wsdl_path.is_file()
    assert b"http://dancuquocgia.bca" in PopulationDbConnector.wsdl_path.read_bytes()
    await connector.close()


@pytest.mark.parametrize(
    ("status", "content", "error"),
    [
        (401, b"unauthorised", BackendAuthFailure),
        (503, b"<html>maintenance</html>", BackendUnavailable),
        (404, b"", BackendRejected),
        (
            200,
            b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
            BackendUnavailable,
        ),
        (200, b"<a>" * 400_000, BackendUnavailable),
    ],
)
async def test_connector_unusable_national_answers_are_translated(
    status: int, content: bytes, error: type[Exception]
) -> None:
    # Given a national endpoint (an httpx mock transport) answering without a SOAP fault:
    # plain HTTP errors, a hostile DTD, a body over the size bound
    http = httpx.AsyncClient(
        transport=httpx.MockTransport(lambda request: httpx.Response(status, content=content))
    )
    connector = PopulationDbConnector(settings("http://national.invalid/dancuquocgia"), http_client=http)
    try:
        # When a lookup is made
        # Then the answer is translated, never parsed unsafely
        with pytest.raises(error):
            await connector.call(json_request(LOOKUP, _body(personal_id="001096001005")))
    finally:
        await connector.close()
        await http.aclose()
