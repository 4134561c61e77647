"""The X-Road SOAP 4.0 endpoint and every refusal, through a real gateway."""

import base64
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from lxml import etree

from hub.identifiers import ServiceId
from hub.soap_face import SoapFace
from signing import parse_xml
from tests.hub.harness import CLIENT, KEY, OTHER_CLIENT, OTHER_KEY, RunningHub, running_hub
from tests.soap_face.support import (
    PEOPLE,
    PEOPLE_DOWN,
    PLAIN_REST,
    PRIVATE,
    SOAP_ENV,
    XROAD,
    Backends,
    config,
    fault_of,
    header_children,
    plain_envelope,
    registry,
    running_backends,
    xroad_envelope,
)

TNS = "urn:lgsp-hub:service:VN:GOV:000.00.00.H40:backend:person-lookup:v1"
LOOKUP = f'<p:PersonLookup xmlns:p="{TNS}"><p:personal_id>001096001005</p:personal_id></p:PersonLookup>'
XML = {"Content-Type": "text/xml; charset=utf-8"}


def _c14n(element: etree._Element) -> bytes:
    return etree.tostring(element, method="c14n", exclusive=True)


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[tuple[RunningHub, Backends]]:
    async with (
        running_backends() as backends,
        running_hub(
            config(backends, broker_url="embedded://", store_url=f"sqlite+aiosqlite:///{tmp_path}/h.db"),
            registry=registry(),
        ) as running,
    ):
        yield running, backends


async def test_soap_face_xroad_request_is_answered_with_headers_echoed_and_request_hash(
    hub: tuple[RunningHub, Backends],
) -> None:
    running, backends = hub
    # Given an X-Road SOAP 4.0 request for a REST service, with an issue header
    request = xroad_envelope(LOOKUP, extra="<xrd:issue>HS-2024-1</xrd:issue>")

    # When it is posted to /soap with the member's key
    response = await running.http.post("/soap", content=request, headers={**XML, "X-Api-Key": KEY})

    # Then the answer echoes every request header in order, then requestHash over the request bytes
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/xml")
    children = header_children(response.content)
    sent = header_children(request)
    assert [_c14n(c) for c in children[:-1]] == [_c14n(c) for c in sent]
    digest = children[-1]
    assert digest.tag == f"{{{XROAD}}}requestHash"
    assert digest.get("algorithmId") == "http://www.w3.org/2001/04/xmlenc#sha512"
    assert digest.text == base64.b64encode(hashlib.sha512(request).digest()).decode()
    # And the body is the mediated answer, and the X-Road id is the exchange's message id
    wrapper = parse_xml(response.content).find(f"{{{SOAP_ENV}}}Body/{{{TNS}}}PersonLookupResponse")
    assert wrapper is not None and wrapper.findtext(f"{{{TNS}}}full_name") == "Nguyễn Văn An"
    assert backends.json_calls[-1]["headers"]["x-road-id"] == "4894e35d-bf0f-44a6-867a-8e51f1daa7e0"
    assert backends.json_calls[-1]["headers"]["x-road-client"] == CLIENT
    await running.hub.exchange_log.flush()
    records = await running.hub.store.exchanges(limit=5)
    assert any(
        r["message_id"] == "4894e35d-bf0f-44a6-867a-8e51f1daa7e0"
        and r["client"] == CLIENT
        and r["status"] == 200
        for r in records
    )


async def test_soap_face_refuses_with_typed_faults_and_records_each(hub: tuple[RunningHub, Backends]) -> None:
    running, backends = hub
    http = running.http
    plain = f"/soap/{PEOPLE}"
    keyed = {**XML, "X-Api-Key": KEY}

    async def refused(
        path: str, content: bytes, headers: dict[str, str], status: int = 500
    ) -> dict[str, str | None]:
        response = await http.post(path, content=content, headers=headers)
        assert response.status_code == status, response.text
        return fault_of(response.content)

    # Identity: missing, unknown, wrong key, disagreeing claims; ACL
    f = await refused(plain, plain_envelope(LOOKUP), {**XML, "X-Api-Key": KEY})
    assert (f["code"], f["type"]) == ("SOAP-ENV:Client.BadRequest", "Client.BadRequest")
    assert "X-Road-Client" in str(f["string"])
    f = await refused(
        plain, plain_envelope(LOOKUP), {**keyed, "X-Road-Client": "VN/GOV/000.00.00.H99/nobody"}
    )
    assert f["code"] == "SOAP-ENV:Client.Unauthenticated"
    f = await refused("/soap", xroad_envelope(LOOKUP), {**XML, "X-Api-Key": "wrong"})
    assert f["code"] == "SOAP-ENV:Client.Unauthenticated"
    f = await refused("/soap", xroad_envelope(LOOKUP), {**keyed, "X-Road-Client": OTHER_CLIENT})
    assert f["code"] == "SOAP-ENV:Client.BadRequest" and "different clients" in str(f["string"])
    f = await refused("/soap", xroad_envelope(LOOKUP, service=PRIVATE), keyed)
    assert f["code"] == "SOAP-ENV:Client.AccessDenied"
    f = await refused(
        f"/soap/{PEOPLE}",
        plain_envelope(LOOKUP),
        {**XML, "X-Road-Client": OTHER_CLIENT, "X-Api-Key": OTHER_KEY},
    )
    assert f["code"] == "SOAP-ENV:Client.AccessDenied"

    # Protocol: no X-Road headers on /soap, wrong version, unknown service, not SOAP, not XML
    f = await refused("/soap", plain_envelope(LOOKUP), keyed)
    assert (f["code"], f["field"]) == ("SOAP-ENV:Client.BadRequest", "Header")
    f = await refused("/soap", xroad_envelope(LOOKUP, protocol="3.1"), keyed)
    assert (f["code"], f["field"]) == ("SOAP-ENV:Client.BadRequest", "protocolVersion")
    f = await refused("/soap", xroad_envelope(LOOKUP, service=f"{PEOPLE}x"), keyed)
    assert f["code"] == "SOAP-ENV:Client.UnknownService"
    f = await refused(f"{plain}/extra", plain_envelope(LOOKUP), {**keyed, "X-Road-Client": CLIENT})
    assert f["code"] == "SOAP-ENV:Client.UnknownService"
    f = await refused(plain, b"<notsoap/>", {**keyed, "X-Road-Client": CLIENT})
    assert f["code"] == "SOAP-ENV:Client.BadRequest"
    f = await refused(
        plain,
        plain_envelope(LOOKUP),
        {"Content-Type": "application/json", "X-Api-Key": KEY, "X-Road-Client": CLIENT},
    )
    assert f["field"] == "Content-Type"

    # Hostile XML is refused by the safe parser before identity is even looked at
    xxe = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>' + plain_envelope(
        "&e;"
    )
    f = await refused(plain, xxe, {**XML, "X-Api-Key": "wrong"})
    assert (f["code"], f["field"]) == ("SOAP-ENV:Client.BadRequest", "Envelope")
    assert "DTD" in str(f["string"])
    f = await refused(plain, b"<SOAP-ENV:Envelope", {**keyed, "X-Road-Client": CLIENT})
    assert f["code"] == "SOAP-ENV:Client.BadRequest"

    # Size: over gateway.max_body_bytes is a 413 Client fault
    big = plain_envelope(LOOKUP + "<!--" + "x" * (64 * 1024) + "-->")
    f = await refused(plain, big, {**keyed, "X-Road-Client": CLIENT}, status=413)
    assert f["code"] == "SOAP-ENV:Client.RequestTooLarge"

    # Body: wrong wrapper, unknown element, repeated element
    f = await refused(
        plain, plain_envelope(f'<p:Other xmlns:p="{TNS}"/>'), {**keyed, "X-Road-Client": CLIENT}
    )
    assert (f["code"], f["field"]) == ("SOAP-ENV:Client.InvalidRequest", "PersonLookup")
    body = f'<p:PersonLookup xmlns:p="{TNS}"><p:personal_id>001096001005</p:personal_id><p:age>3</p:age></p:PersonLookup>'
    f = await refused(plain, plain_envelope(body), {**keyed, "X-Road-Client": CLIENT})
    assert (f["code"], f["field"]) == ("SOAP-ENV:Client.InvalidRequest", "age")
    body = f'<p:PersonLookup xmlns:p="{TNS}"><p:personal_id>001096001005</p:personal_id><p:as_of>2024-02-30</p:as_of></p:PersonLookup>'
    f = await refused(plain, plain_envelope(body), {**keyed, "X-Road-Client": CLIENT})
    assert (f["code"], f["field"]) == ("SOAP-ENV:Client.InvalidRequest", "as_of")
    assert not backends.json_calls, "nothing refused may reach the backend"

    # Backend: down, then too slow
    down = LOOKUP.replace(TNS, TNS.replace(":v1", ":down"))
    f = await refused("/soap", xroad_envelope(down, service=PEOPLE_DOWN), keyed)
    assert f["code"] == "SOAP-ENV:Server.ServerProxy.BackendUnavailable"
    backends.delay = 1.5
    f = await refused("/soap", xroad_envelope(LOOKUP), keyed)
    assert f["code"] == "SOAP-ENV:Server.ServerProxy.BackendTimeout"
    backends.delay = 0

    # And every refusal is an exchange record with its type
    await running.hub.exchange_log.flush()
    records = await running.hub.store.exchanges(limit=50)
    assert {r["error_type"] for r in records} >= {
        "Client.BadRequest",
        "Client.Unauthenticated",
        "Client.AccessDenied",
        "Client.UnknownService",
        "Client.RequestTooLarge",
        "Client.InvalidRequest",
        "Server.ServerProxy.BackendUnavailable",
        "Server.ServerProxy.BackendTimeout",
    }
    assert {r["status"] for r in records} == {500, 413}


async def test_soap_face_wsdl_is_served_per_service_or_explained(hub: tuple[RunningHub, Backends]) -> None:
    running, _ = hub
    http = running.http
    # A model-based service: generated once, its address the hub's own endpoint for the service
    first = await http.get(f"/soap/{PEOPLE}", params={"wsdl": ""})
    assert first.status_code == 200 and first.headers["content-type"].startswith("text/xml")
    address = parse_xml(first.content).find(".//{http://schemas.xmlsoap.org/wsdl/soap/}address")
    assert address is not None and address.get("location") == f"{running.gateway.url}/soap/{PEOPLE}"
    assert (await http.get(f"/soap/{PEOPLE}?wsdl")).content == first.content
    faces = next(e for e in running.hub.extensions if isinstance(e, SoapFace)).faces
    assert faces.get(ServiceId.parse(PEOPLE)) is faces.get(ServiceId.parse(PEOPLE))

    # A REST service without models, an unknown one and a malformed path: 404 with a SOAP explanation
    response = await http.get(f"/soap/{PLAIN_REST}?wsdl")
    assert response.status_code == 404
    f = fault_of(response.content)
    assert f["code"] == "SOAP-ENV:Client.UnknownService" and "no request and response models" in str(
        f["string"]
    )
    response = await http.get(f"/soap/{PEOPLE}x?wsdl")
    assert (response.status_code, fault_of(response.content)["type"]) == (404, "Client.UnknownService")
    response = await http.get("/soap/VN/GOV?wsdl")
    assert (response.status_code, fault_of(response.content)["type"]) == (400, "Client.BadRequest")
    response = await http.get(f"/soap/{PEOPLE}?xsd=anything.xsd")
    assert response.status_code == 404
    assert (await http.get(f"/soap/{PEOPLE}")).status_code == 404
