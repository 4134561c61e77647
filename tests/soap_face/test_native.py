"""Native SOAP services through the hub: the vendored WSDL served as the hub's, the envelope passed through."""

import asyncio
import base64
import hashlib
from pathlib import Path

import pytest
import zeep.exceptions
from lxml import etree

from signing import parse_xml
from tests.hub.harness import running_hub
from tests.soap_face.support import (
    GREET,
    GREETING,
    SOAP_ENV,
    XROAD,
    config,
    header_children,
    registry,
    running_backends,
    xroad_envelope,
    zeep_client,
)


async def test_soap_face_passes_a_native_soap_service_through_with_its_vendored_wsdl(tmp_path: Path) -> None:
    async with (
        running_backends() as backends,
        running_hub(
            config(backends, broker_url="embedded://", store_url=f"sqlite+aiosqlite:///{tmp_path}/h.db"),
            registry=registry(),
        ) as running,
    ):
        gateway = running.gateway.url
        # Given the vendored WSDL as the hub serves it: the address and the schema import point at the hub
        wsdl = (await running.http.get(f"/soap/{GREET}?wsdl")).content
        root = parse_xml(wsdl)
        address = root.find(".//{http://schemas.xmlsoap.org/wsdl/soap/}address")
        assert address is not None and address.get("location") == f"{gateway}/soap/{GREET}"
        imported = root.find(".//{http://www.w3.org/2001/XMLSchema}import")
        assert (
            imported is not None
            and imported.get("schemaLocation") == f"{gateway}/soap/{GREET}?xsd=greeting.xsd"
        )
        assert (await running.http.get(f"/soap/{GREET}?xsd=../support.py")).status_code == 404

        # When zeep loads it (and its schema, through the hub) and calls the operation
        client = await asyncio.to_thread(zeep_client, f"{gateway}/soap/{GREET}?wsdl", running.headers())
        greeting = await asyncio.to_thread(client.service.Greet, name="An")

        # Then the backend got the SOAP envelope as sent, with its SOAPAction, and zeep the answer
        assert greeting == "Hello, An"
        call = backends.soap_calls[-1]
        assert call["headers"]["content-type"].startswith("text/xml")
        assert call["headers"]["soapaction"] == '"urn:example:greeting#Greet"'
        assert parse_xml(call["body"]).find(f".//{{{GREETING}}}Greet") is not None

        # And the service's own SOAP fault comes back unchanged
        with pytest.raises(zeep.exceptions.Fault) as fault:
            await asyncio.to_thread(client.service.Greet, name="fault")
        assert fault.value.message == "no greeting for faults"

        # When an X-Road client calls the same service on /soap
        request = xroad_envelope(
            f'<g:Greet xmlns:g="{GREETING}"><g:name>Binh</g:name></g:Greet>', service=GREET
        )
        response = await running.http.post(
            "/soap", content=request, headers={"Content-Type": "text/xml", "X-Api-Key": "test-key"}
        )

        # Then the service's answer carries the request's X-Road headers and hash, then its own header
        assert response.status_code == 200, response.text
        children = header_children(response.content)
        names = [etree.QName(c).localname for c in children]
        assert names == ["client", "service", "userId", "id", "protocolVersion", "requestHash", "served"]
        digest = base64.b64encode(hashlib.sha512(request).digest()).decode()
        assert children[5].text == digest
        body = parse_xml(response.content).find(f"{{{SOAP_ENV}}}Body")
        assert body is not None and body.findtext(f".//{{{GREETING}}}greeting") == "Hello, Binh"
        assert parse_xml(backends.soap_calls[-1]["body"]).find(f".//{{{XROAD}}}client") is not None
