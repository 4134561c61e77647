"""Test doubles for the SOAP face: connector types with models or a vendored WSDL, real local backends.

`ModelledRest` is the generic `rest` connector with pydantic models (a REST/JSON service that gets
a generated WSDL); `VendoredSoap` is the generic `soap` connector with a vendored WSDL (a native
SOAP service). Both backends are real Starlette apps on 127.0.0.1 that record what reached them.
"""

import asyncio
import contextlib
import enum
from collections.abc import AsyncIterator, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

import requests
import zeep
from lxml import etree
from pydantic import BaseModel, ConfigDict, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.rest import RestConnector
from connectors.soap import SoapConnector
from hub.connector import Operation
from hub.identifiers import ServiceId, SubsystemId
from hub.registry import ConnectorRegistry
from hub.serving import AppServer
from signing import parse_xml
from tests.hub.harness import CLIENT, PROVIDER, hub_config

DATA = Path(__file__).parent / "data"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
XROAD = "http://x-road.eu/xsd/xroad.xsd"
IDEN = "http://x-road.eu/xsd/identifiers"
GREETING = "urn:example:greeting"

PEOPLE = f"{PROVIDER}/person-lookup/v1"
PEOPLE_DOWN = f"{PROVIDER}/person-lookup/down"
GREET = f"{PROVIDER}/greet/v1"
PLAIN_REST = f"{PROVIDER}/echo/v1"
PRIVATE = f"{PROVIDER}/private/v1"


class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


class Address(BaseModel):
    street: str
    postcode: str | None = None


class PersonQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    personal_id: str = Field(pattern=r"^\d{12}$")
    include_addresses: bool = False
    as_of: date | None = None


class Person(BaseModel):
    personal_id: str
    full_name: str
    birth_date: date
    height_m: float | None = None
    children: int
    verified: bool
    updated_at: datetime
    status: Literal["alive", "deceased"]
    favourite: Colour | None = None
    address: Address | None = None
    previous: list[Address] = []
    nicknames: list[str] = []


class ModelledRest(RestConnector):
    """The generic REST pass-through with models: a JSON service the SOAP face can mediate."""

    name: ClassVar[str] = "modelled_rest"
    operations: ClassVar[Mapping[str, Operation]] = {
        "person-lookup": Operation("person-lookup", "Look a person up", PersonQuery, Person)
    }


class VendoredSoap(SoapConnector):
    """The generic SOAP pass-through with a vendored WSDL: a native SOAP service."""

    name: ClassVar[str] = "vendored_soap"
    wsdl_path: ClassVar[Path] = DATA / "greeting.wsdl"


def registry() -> ConnectorRegistry:
    kinds = ConnectorRegistry.from_entry_points()
    kinds.register(ModelledRest)
    kinds.register(VendoredSoap)
    return kinds


class Backends:
    """A JSON people service and a SOAP greeting service, each recording its calls."""

    def __init__(self) -> None:
        self.json_calls: list[dict[str, Any]] = []
        self.soap_calls: list[dict[str, Any]] = []
        self.delay = 0.0
        self.json = AppServer(
            Starlette(routes=[Route("/{path:path}", self._people, methods=["POST", "GET"])])
        )
        self.soap = AppServer(Starlette(routes=[Route("/greeting", self._greet, methods=["POST"])]))

    async def _people(self, request: Request) -> Response:
        body = await request.json()
        self.json_calls.append({"headers": dict(request.headers), "body": body})
        if self.delay:
            await asyncio.sleep(self.delay)
        if body["personal_id"] == "000000000404":
            return JSONResponse({"error": "no such person"}, status_code=404)
        return JSONResponse(
            {
                "personal_id": body["personal_id"],
                "full_name": "Nguyễn Văn An",
                "birth_date": "1996-05-01",
                "height_m": 1.72,
                "children": 2,
                "verified": True,
                "updated_at": "2024-03-01T08:30:00+07:00",
                "status": "alive",
                "favourite": "green",
                "address": {"street": "1 Tràng Tiền", "postcode": None},
                "previous": [{"street": "2 Hàng Bài"}, {"street": "3 Lý Thái Tổ", "postcode": "100000"}]
                if body.get("include_addresses")
                else [],
                "nicknames": [],
            }
        )

    async def _greet(self, request: Request) -> Response:
        raw = await request.body()
        self.soap_calls.append({"headers": dict(request.headers), "body": raw})
        name = parse_xml(raw).findtext(f".//{{{GREETING}}}name")
        if name == "fault":
            return Response(
                f'<s:Envelope xmlns:s="{SOAP_ENV}"><s:Body><s:Fault><faultcode>s:Client</faultcode>'
                "<faultstring>no greeting for faults</faultstring></s:Fault></s:Body></s:Envelope>",
                status_code=500,
                media_type="text/xml; charset=utf-8",
            )
        return Response(
            f'<s:Envelope xmlns:s="{SOAP_ENV}" xmlns:g="{GREETING}"><s:Header><g:served>yes</g:served></s:Header>'
            f"<s:Body><g:GreetResponse><g:greeting>Hello, {name}</g:greeting></g:GreetResponse></s:Body>"
            "</s:Envelope>",
            media_type="text/xml; charset=utf-8",
        )


@contextlib.asynccontextmanager
async def running_backends() -> AsyncIterator[Backends]:
    backends = Backends()
    await backends.json.start()
    await backends.soap.start()
    try:
        yield backends
    finally:
        await backends.soap.stop()
        await backends.json.stop()


def config(backends: Backends, *, broker_url: str, store_url: str) -> dict[str, Any]:
    """The harness configuration plus a modelled REST service, a native SOAP one and a dead one."""
    data = hub_config(backends.json.url, broker_url=broker_url, store_url=store_url)
    retry = {"attempts": 2, "backoff": 0.05}
    data["connectors"] |= {
        "people": {
            "type": "modelled_rest",
            "settings": {"base_url": backends.json.url, "read_timeout": 1.0},
            "retry": retry,
        },
        "people-down": {
            "type": "modelled_rest",
            "settings": {"base_url": "http://127.0.0.1:9", "connect_timeout": 0.5},
            "retry": retry,
        },
        "greeter": {"type": "vendored_soap", "settings": {"endpoint": f"{backends.soap.url}/greeting"}},
    }
    data["services"] |= {
        PEOPLE: {"connector": "people"},
        PEOPLE_DOWN: {"connector": "people-down"},
        GREET: {"connector": "greeter"},
    }
    data["acl"][0]["services"] += [PEOPLE, PEOPLE_DOWN, GREET]
    return data


def zeep_client(wsdl_url: str, headers: Mapping[str, str]) -> zeep.Client:
    """A plain synchronous zeep client, as provincial software uses one (run it in a thread)."""
    session = requests.Session()
    session.trust_env = False
    session.headers.update(headers)
    return zeep.Client(wsdl_url, transport=zeep.Transport(session=session, timeout=10, operation_timeout=10))


def identifier(tag: str, object_type: str, parts: Mapping[str, str]) -> str:
    inner = "".join(f"<iden:{k}>{v}</iden:{k}>" for k, v in parts.items())
    return f'<xrd:{tag} iden:objectType="{object_type}">{inner}</xrd:{tag}>'


def client_parts(client: str = CLIENT) -> dict[str, str]:
    parsed = SubsystemId.parse(client)
    return {
        "xRoadInstance": parsed.instance,
        "memberClass": parsed.member_class,
        "memberCode": parsed.member_code,
        "subsystemCode": parsed.subsystem_code,
    }


def service_parts(service: str) -> dict[str, str]:
    parsed = ServiceId.parse(service)
    parts = {**client_parts(str(parsed.provider)), "serviceCode": parsed.service_code}
    if parsed.version:
        parts["serviceVersion"] = parsed.version
    return parts


def xroad_envelope(
    body: str,
    *,
    service: str = PEOPLE,
    client: str = CLIENT,
    message_id: str = "4894e35d-bf0f-44a6-867a-8e51f1daa7e0",
    protocol: str = "4.0",
    extra: str = "",
) -> bytes:
    """An X-Road SOAP 4.0 request, headers in the spec's order."""
    header = (
        identifier("client", "SUBSYSTEM", client_parts(client))
        + identifier("service", "SERVICE", service_parts(service))
        + f"<xrd:userId>VN001096001005</xrd:userId><xrd:id>{message_id}</xrd:id>"
        + f"<xrd:protocolVersion>{protocol}</xrd:protocolVersion>{extra}"
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<SOAP-ENV:Envelope xmlns:SOAP-ENV="{SOAP_ENV}" '
        f'xmlns:xrd="{XROAD}" xmlns:iden="{IDEN}"><SOAP-ENV:Header>{header}</SOAP-ENV:Header>'
        f"<SOAP-ENV:Body>{body}</SOAP-ENV:Body></SOAP-ENV:Envelope>"
    ).encode()


def plain_envelope(body: str) -> bytes:
    return f'<SOAP-ENV:Envelope xmlns:SOAP-ENV="{SOAP_ENV}"><SOAP-ENV:Body>{body}</SOAP-ENV:Body></SOAP-ENV:Envelope>'.encode()


def fault_of(content: bytes) -> dict[str, str | None]:
    """faultcode, faultstring and the detail's type and field of a SOAP 1.1 fault."""
    root = parse_xml(content)
    fault = root.find(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault")
    assert fault is not None, content
    detail = fault.find("detail")
    ns = "{urn:lgsp-hub:soap-face:fault}"
    return {
        "code": fault.findtext("faultcode"),
        "string": fault.findtext("faultstring"),
        "type": detail.findtext(f"{ns}type") if detail is not None else None,
        "field": detail.findtext(f"{ns}field") if detail is not None else None,
    }


def header_children(content: bytes) -> list[etree._Element]:
    header = parse_xml(content).find(f"{{{SOAP_ENV}}}Header")
    return [] if header is None else [child for child in header if isinstance(child.tag, str)]
