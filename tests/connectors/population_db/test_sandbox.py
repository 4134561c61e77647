"""The sandbox as a real SOAP server, spoken to with raw HTTP as any national-system client would."""

import time
from typing import Any

import httpx
import pytest
from lxml import etree

from connectors.population_db._soap import NS, XSD_PATH, Fault, body_payload, read_fault
from connectors.population_db.sandbox import create_app
from hub.errors import ConfigError
from signing import parse_xml
from tests.connectors.population_db.conftest import (
    RunningSandbox,
    StartSandbox,
    auth_headers,
    national_envelope,
)

XXE = (
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>&x;</soap:Body>'
    b"</soap:Envelope>"
)


async def _post(sandbox: RunningSandbox, body: bytes, **auth: Any) -> httpx.Response:
    async with httpx.AsyncClient(timeout=5) as client:
        return await client.post(sandbox.url, content=body, headers=auth_headers(sandbox.url, **auth))


def _fault(response: httpx.Response) -> Fault:
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/xml")
    fault = read_fault(parse_xml(response.content))
    assert fault is not None
    return fault


async def test_sandbox_lookup_answers_a_schema_valid_citizen(sandbox: RunningSandbox) -> None:
    # Given a citizen of the sandbox population
    citizen = sandbox.sandbox.population.citizen(42)
    # When it is looked up with valid credentials
    response = await _post(sandbox, national_envelope(SoDinhDanh=citizen.personal_id))
    # Then the answer is a schema-valid TraCuuThongTinCongDanResponse for that citizen
    assert response.status_code == 200
    payload = body_payload(parse_xml(response.content))
    assert etree.XMLSchema(etree.parse(str(XSD_PATH))).validate(payload)
    assert payload.findtext(f"{{{NS}}}CongDan/{{{NS}}}SoDinhDanh") == citizen.personal_id
    assert payload.findtext(f"{{{NS}}}CongDan/{{{NS}}}HoVaTen/{{{NS}}}Ten") == citizen.given_name


async def test_sandbox_verify_answers_tontai(sandbox: RunningSandbox) -> None:
    # Given a citizen and a wrong birth year
    citizen = sandbox.sandbox.population.citizen(42)
    good = f"<dc:NgayThangNam>{citizen.birth_date:%Y%m%d}</dc:NgayThangNam>"
    bad = f"<dc:Nam>{citizen.birth_date.year + 1}</dc:Nam>"
    results = []
    for born in (good, bad):
        # When the name and birth date are verified
        body = national_envelope(
            "XacThucThongTinCongDan",
            SoDinhDanh=citizen.personal_id,
            HoVaTen=citizen.full_name.upper(),
            NgayThangNamSinh=born,
        )
        response = await _post(sandbox, body)
        results.append(body_payload(parse_xml(response.content)).findtext(f"{{{NS}}}TonTai"))
    # Then the match is true (names compare case-insensitively) and the mismatch false
    assert results == ["true", "false"]


async def test_sandbox_unknown_id_is_a_not_found_fault(sandbox: RunningSandbox) -> None:
    # Given a well-formed id nobody has
    # When it is looked up
    response = await _post(sandbox, national_envelope(SoDinhDanh="001099999999"))
    # Then a Client.NotFound fault with code KHONG_TIM_THAY is answered
    fault = _fault(response)
    assert (fault.faultcode, fault.code) == ("Client.NotFound", "KHONG_TIM_THAY")


@pytest.mark.parametrize(
    ("auth", "reason"),
    [
        ({"secret": "wrong"}, "signature does not match"),
        ({"user": "stranger"}, "unknown user"),
        ({"api_key": "wrong"}, "ApiKey"),
        ({"client": "not an id"}, "X-Road-Client"),
        ({"timestamp_ms": int((time.time() - 3600) * 1000)}, "outside the ±300 s window"),
    ],
)
async def test_sandbox_wrong_or_stale_auth_is_a_client_fault(
    sandbox: RunningSandbox, auth: dict[str, Any], reason: str
) -> None:
    # Given one wrong or stale auth header
    citizen = sandbox.sandbox.population.citizen(1)
    # When a lookup is sent
    response = await _post(sandbox, national_envelope(SoDinhDanh=citizen.personal_id), **auth)
    # Then an authentication fault says what is wrong
    fault = _fault(response)
    assert (fault.faultcode, fault.code) == ("Client.Authentication", "XAC_THUC_THAT_BAI")
    assert reason in fault.faultstring


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"SoDinhDanh": "12345"}, "SoDinhDanh"),
        ({"MaDVC": None, "SoDinhDanh": "001096001005"}, "MaDVC"),
        ({"MaTichHop": "37", "SoDinhDanh": "001096001005"}, "MaTichHop"),
        (
            {"SoDinhDanh": "001096001005", "NgayThangNamSinh": "<dc:NgayThangNam>1996</dc:NgayThangNam>"},
            "NgayThangNam",
        ),
    ],
)
async def test_sandbox_schema_invalid_request_names_the_field(
    sandbox: RunningSandbox, fields: dict[str, str | None], field: str
) -> None:
    # Given a request that breaks the XSD at one field
    # When it is sent
    response = await _post(sandbox, national_envelope(**fields))
    # Then a Client.Validation fault names that field
    fault = _fault(response)
    assert (fault.faultcode, fault.field) == ("Client.Validation", field)


async def test_sandbox_refuses_dtd_and_entities(sandbox: RunningSandbox) -> None:
    # Given an XXE payload
    # When it is sent
    response = await _post(sandbox, XXE)
    # Then it is refused at the parser, nothing is expanded
    fault = _fault(response)
    assert (fault.faultcode, fault.field) == ("Client.Validation", "Envelope")
    assert "dtd refused" in fault.faultstring
    assert b"root:" not in response.content


async def test_sandbox_refuses_a_duplicate_request_id(sandbox: RunningSandbox) -> None:
    # Given a request that was already answered
    citizen = sandbox.sandbox.population.citizen(3)
    body = national_envelope(MaYeuCau="req-0001", SoDinhDanh=citizen.personal_id)
    first = await _post(sandbox, body)
    # When the same MaYeuCau is sent again
    second = await _post(sandbox, body)
    # Then the first is answered and the second refused
    assert first.status_code == 200
    fault = _fault(second)
    assert (fault.faultcode, fault.code, fault.field) == (
        "Client.DuplicateRequest",
        "TRUNG_MA_YEU_CAU",
        "MaYeuCau",
    )


async def test_sandbox_injected_errors_are_server_faults(start_sandbox: StartSandbox) -> None:
    # Given a sandbox configured to fail every request
    sandbox = await start_sandbox(error_rate=1.0)
    # When a request is sent
    response = await _post(sandbox, national_envelope(SoDinhDanh="001096001005"))
    # Then a Server fault is answered
    fault = _fault(response)
    assert (fault.faultcode, fault.code) == ("Server", "LOI_HE_THONG")


async def test_sandbox_serves_wsdl_with_its_own_address(sandbox: RunningSandbox) -> None:
    # Given a running sandbox
    async with httpx.AsyncClient(timeout=5) as client:
        # When its WSDL and schema are fetched
        wsdl = await client.get(sandbox.url, params={"wsdl": ""})
        xsd = await client.get(sandbox.url, params={"xsd": "dancuquocgia.xsd"})
    # Then the address and schema location point at the served URL, and the schema is the vendored one
    document = parse_xml(wsdl.content)
    address = document.find(".//{http://schemas.xmlsoap.org/wsdl/soap/}address")
    assert address is not None and address.get("location") == sandbox.url
    imported = document.find(".//{http://www.w3.org/2001/XMLSchema}import")
    assert imported is not None and imported.get("schemaLocation") == f"{sandbox.url}?xsd=dancuquocgia.xsd"
    assert xsd.content == XSD_PATH.read_bytes()


@pytest.mark.parametrize(
    ("options", "key"), [({"colour": "blue"}, "colour"), ({"error_rate": 2}, "error_rate")]
)
def test_sandbox_options_unknown_or_invalid_are_refused(options: dict[str, Any], key: str) -> None:
    # Given an unknown or out-of-range option
    # When the app is created
    # Then ConfigError names the option
    with pytest.raises(ConfigError) as caught:
        create_app(**options)
    assert caught.value.key == key
