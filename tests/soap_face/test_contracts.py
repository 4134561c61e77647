"""WSDL generation and X-Road header reading, without a running hub."""

import datetime as dt
import decimal
import enum
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import zeep
from lxml import etree
from pydantic import BaseModel, Field

from connectors.business_registry import BusinessRegistryConnector
from connectors.population_db import PopulationDbConnector
from hub.identifiers import ServiceId
from hub.soap_face import InvalidBody, SoapProtocolError
from hub.soap_face._envelope import read_message
from hub.soap_face._schema import ShapeBook, UnsupportedModel, read_request
from hub.soap_face._wsdl import _generated, _native, addressed
from signing import parse_xml
from tests.soap_face.support import PEOPLE, SOAP_ENV, Person, PersonQuery, xroad_envelope

XS = "{http://www.w3.org/2001/XMLSchema}"
BUSINESS = ServiceId.parse("VN/GOV/000.00.00.G22/business/enterprise-lookup/v1")


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Node(BaseModel):
    label: str
    size: decimal.Decimal
    at: dt.time
    key: uuid.UUID
    level: Level = Level.LOW
    children: list["Node"] = Field(default_factory=list)


def _declared(wsdl: bytes, type_name: str) -> dict[str, dict[str, str | None]]:
    root = parse_xml(wsdl)
    complex_type = root.find(f".//{XS}complexType[@name='{type_name}']")
    assert complex_type is not None, type_name
    return {
        str(e.get("name")): {k: e.get(k) for k in ("type", "minOccurs", "maxOccurs", "nillable")}
        for e in complex_type.iter(f"{XS}element")
    }


def test_wsdl_generation_maps_each_python_type_to_its_xsd_type() -> None:
    # Given models using every supported kind of field
    face = _generated(ServiceId.parse(PEOPLE), "person-lookup", PersonQuery, Person)

    # When the WSDL is generated, Then each field has its XSD type, occurrence and nillability
    person = _declared(face.wsdl, "Person")
    assert person["birth_date"] == {"type": "xs:date", "minOccurs": None, "maxOccurs": None, "nillable": None}
    assert person["updated_at"]["type"] == "xs:dateTime"
    assert person["height_m"] == {
        "type": "xs:double",
        "minOccurs": "0",
        "maxOccurs": None,
        "nillable": "true",
    }
    assert (person["children"]["type"], person["verified"]["type"]) == ("xs:integer", "xs:boolean")
    assert person["address"]["type"] == "tns:Address"
    assert person["previous"] == {
        "type": "tns:Address",
        "minOccurs": "0",
        "maxOccurs": "unbounded",
        "nillable": None,
    }
    assert person["nicknames"]["type"] == "xs:string" and person["nicknames"]["maxOccurs"] == "unbounded"
    assert person["favourite"]["type"] == "tns:Colour"
    root = parse_xml(face.wsdl)
    colours = root.findall(f".//{XS}simpleType[@name='Colour']/{XS}restriction/{XS}enumeration")
    assert [c.get("value") for c in colours] == ["red", "green"]
    status = root.findall(f".//{XS}element[@name='status']/{XS}simpleType/{XS}restriction/{XS}enumeration")
    assert [s.get("value") for s in status] == ["alive", "deceased"]
    # And the wrappers are named after the operation, in a namespace made of the service id
    assert face.request_tag == "PersonLookup" and face.response_tag == "PersonLookupResponse"
    assert face.namespace == "urn:lgsp-hub:service:VN:GOV:000.00.00.H40:backend:person-lookup:v1"
    wrapper = root.find(f".//{XS}element[@name='PersonLookup']")
    assert wrapper is not None and wrapper.get("type") == "tns:PersonQuery"

    # And recursive models, Decimal, time, UUID and int enums map too
    node = _declared(_generated(ServiceId.parse(PEOPLE), "tree", Node, Node).wsdl, "Node")
    assert node["size"]["type"] == "xs:decimal" and node["at"]["type"] == "xs:time"
    assert node["key"]["type"] == "xs:string" and node["level"]["type"] == "tns:Level"
    assert node["children"]["type"] == "tns:Node"


def test_wsdl_generation_refuses_a_type_without_xsd_counterpart_naming_the_field() -> None:
    # Given a model with a free-form mapping
    class Loose(BaseModel):
        name: str
        extra: dict[str, int]

    # When it is described, Then the field without an XSD counterpart is named
    with pytest.raises(UnsupportedModel) as refused:
        ShapeBook().describe(Loose)
    assert refused.value.path == "extra"


def test_wsdl_generated_for_business_registry_models_loads_in_zeep(tmp_path: Path) -> None:
    # Given the business registry's real lookup operation
    operation = BusinessRegistryConnector.operations["enterprise-lookup"]
    assert operation.request_model is not None and operation.response_model is not None

    # When its WSDL is generated and loaded by zeep
    face = _generated(BUSINESS, "enterprise-lookup", operation.request_model, operation.response_model)
    path = tmp_path / "business.wsdl"
    path.write_bytes(addressed(face.wsdl, "http://127.0.0.1:1/soap/x"))
    client = zeep.Client(str(path))

    # Then zeep offers the operation with the model's fields
    signature = client.service.EnterpriseLookup._proxy._binding._operations["EnterpriseLookup"]
    assert "enterprise_code" in str(signature.input.signature())
    assert "legal_representative" in str(signature.output.signature())


def test_native_wsdl_of_population_db_points_address_and_imports_at_the_hub() -> None:
    # Given the population DB's vendored WSDL, When it is prepared and addressed
    face = _native(
        ServiceId.parse("VN/GOV/000.00.00.G06/population/citizen-lookup/v1"),
        "citizen-lookup",
        PopulationDbConnector.wsdl_path,
    )
    served = parse_xml(addressed(face.wsdl, "http://hub/soap/p"))
    # Then its address and its schema import are the hub's, and the schema is served by name
    address = served.find(".//{http://schemas.xmlsoap.org/wsdl/soap/}address")
    imported = served.find(f".//{XS}import")
    assert address is not None and address.get("location") == "http://hub/soap/p"
    assert imported is not None and imported.get("schemaLocation") == "http://hub/soap/p?xsd=dancuquocgia.xsd"
    assert set(face.documents) == {"dancuquocgia.xsd"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda s: s.replace(b'objectType="SUBSYSTEM"', b'objectType="SERVICE"', 1), "client"),
        (
            lambda s: s.replace(b"000.00.00.H40</iden:memberCode>", b"000.00.00.H40/x</iden:memberCode>", 1),
            "client",
        ),
        (lambda s: s.replace(b"<xrd:id>", b"<xrd:requestHash>x</xrd:requestHash><xrd:id>"), "requestHash"),
        (lambda s: s.replace(b"<xrd:userId>", b"<xrd:id>again</xrd:id><xrd:userId>"), "id"),
        (lambda s: s.replace(b"iden:serviceVersion", b"iden:serviceFlavour"), "service"),
        (lambda s: s.replace(b">person-lookup<", b"><"), "service"),
        (lambda s: s.replace(SOAP_ENV.encode(), b"http://www.w3.org/2003/05/soap-envelope"), "Envelope"),
    ],
)
def test_xroad_headers_malformed_are_refused_naming_the_header(
    change: Callable[[bytes], bytes], field: str
) -> None:
    # Given an X-Road request with one header broken, When it is read, Then the header is named
    raw = change(xroad_envelope("<x/>"))
    with pytest.raises(SoapProtocolError) as refused:
        read_message(raw, parse_xml(raw))
    assert refused.value.field == field


def test_request_reading_refuses_child_elements_in_a_text_field() -> None:
    # Given a text field holding an element, When it is read, Then the field is named
    shape = ShapeBook().describe(PersonQuery)
    wrapper = etree.fromstring(b"<w><personal_id><b>1</b></personal_id></w>")
    with pytest.raises(InvalidBody) as refused:
        read_request(wrapper, shape)
    assert refused.value.field == "personal_id"
