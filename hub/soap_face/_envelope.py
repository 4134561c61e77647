"""SOAP 1.1 envelopes: read a safely parsed request (with its X-Road 4.0 headers), write answers and faults.

X-Road identifiers in headers are elements (``iden:xRoadInstance`` ...); they become the hub's
identifiers through hub.identifiers, each part percent-encoded first so that no value can smuggle
a ``/`` separator past the one parser.
"""

import base64
import copy
import hashlib
from dataclasses import dataclass
from urllib.parse import quote

from lxml import etree

from hub.errors import IdentifierError
from hub.identifiers import ClientId, ServiceId, SubsystemId, parse_client
from hub.soap_face.errors import SoapProtocolError

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
XROAD = "http://x-road.eu/xsd/xroad.xsd"
IDEN = "http://x-road.eu/xsd/identifiers"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
FAULT_NS = "urn:lgsp-hub:soap-face:fault"
SHA512_URI = "http://www.w3.org/2001/04/xmlenc#sha512"
PROTOCOL_VERSION = "4.0"
CONTENT_TYPE = "text/xml; charset=utf-8"
XML_TYPES = frozenset({"text/xml", "application/xml", "application/soap+xml"})

_ENVELOPE = f"{{{SOAP_ENV}}}Envelope"
_HEADER = f"{{{SOAP_ENV}}}Header"
_BODY = f"{{{SOAP_ENV}}}Body"
_FAULT = f"{{{SOAP_ENV}}}Fault"
_NSMAP = {"SOAP-ENV": SOAP_ENV}
_MAX_ID = 128
_IDENTIFIER_PARTS = (
    "xRoadInstance",
    "memberClass",
    "memberCode",
    "subsystemCode",
    "serviceCode",
    "serviceVersion",
)


@dataclass(frozen=True, slots=True)
class XRoadHeaders:
    """The X-Road headers of a request; `elements` are the header elements in their order, to echo."""

    client: ClientId
    service: ServiceId | None
    message_id: str
    protocol_version: str
    user_id: str | None
    issue: str | None
    elements: tuple[etree._Element, ...]


@dataclass(frozen=True, slots=True)
class SoapMessage:
    """A SOAP 1.1 request: the bytes as received, its Body's payload element and its X-Road headers."""

    raw: bytes
    root: etree._Element
    payload: etree._Element | None
    xroad: XRoadHeaders | None


def read_message(raw: bytes, root: etree._Element) -> SoapMessage:
    """Read a safely parsed SOAP 1.1 request.

    Raises:
        SoapProtocolError: not a SOAP 1.1 Envelope with one Body, or malformed X-Road headers.
    """
    if root.tag != _ENVELOPE:
        if etree.QName(root).localname == "Envelope":
            raise SoapProtocolError(
                f"only SOAP 1.1 is accepted (namespace {SOAP_ENV}); got {etree.QName(root).namespace}",
                field="Envelope",
            )
        raise SoapProtocolError("the request is not a SOAP Envelope", field="Envelope")
    children = [child for child in root if isinstance(child.tag, str)]
    bodies = [child for child in children if child.tag == _BODY]
    if len(bodies) != 1:
        raise SoapProtocolError(f"the Envelope must hold one Body, found {len(bodies)}", field="Body")
    headers = [child for child in children if child.tag == _HEADER]
    if len(headers) > 1:
        raise SoapProtocolError("the Envelope holds more than one Header", field="Header")
    payloads = [child for child in bodies[0] if isinstance(child.tag, str)]
    if len(payloads) > 1:
        raise SoapProtocolError(f"the Body must hold one element, found {len(payloads)}", field="Body")
    xroad = _xroad_headers(headers[0]) if headers else None
    return SoapMessage(raw=raw, root=root, payload=payloads[0] if payloads else None, xroad=xroad)


def _xroad_headers(header: etree._Element) -> XRoadHeaders | None:
    elements = tuple(child for child in header if isinstance(child.tag, str) and _in_xroad(child))
    if not elements:
        return None
    found: dict[str, etree._Element] = {}
    for element in elements:
        name = etree.QName(element).localname
        if name in found:
            raise SoapProtocolError(f"the X-Road header xrd:{name} appears twice", field=name)
        found[name] = element
    if "requestHash" in found:
        raise SoapProtocolError("xrd:requestHash belongs in responses, not requests", field="requestHash")
    for required in ("client", "id", "protocolVersion"):
        if required not in found:
            raise SoapProtocolError(f"the X-Road header xrd:{required} is required", field=required)
    version = (found["protocolVersion"].text or "").strip()
    if version != PROTOCOL_VERSION:
        raise SoapProtocolError(
            f"xrd:protocolVersion must be {PROTOCOL_VERSION}, not {version!r}", field="protocolVersion"
        )
    message_id = (found["id"].text or "").strip()
    if not message_id or len(message_id) > _MAX_ID:
        raise SoapProtocolError(f"xrd:id must hold 1 to {_MAX_ID} characters", field="id")
    service = found.get("service")
    return XRoadHeaders(
        client=_client(found["client"]),
        service=_service(service) if service is not None else None,
        message_id=message_id,
        protocol_version=version,
        user_id=_text(found.get("userId")),
        issue=_text(found.get("issue")),
        elements=elements,
    )


def _in_xroad(element: etree._Element) -> bool:
    return etree.QName(element).namespace == XROAD


def _text(element: etree._Element | None) -> str | None:
    if element is None:
        return None
    return (element.text or "").strip() or None


def _parts(element: etree._Element, name: str) -> tuple[str, dict[str, str]]:
    object_type = element.get(f"{{{IDEN}}}objectType")
    if object_type is None:
        raise SoapProtocolError(f"xrd:{name} needs the attribute iden:objectType", field=name)
    parts: dict[str, str] = {}
    for child in element:
        if not isinstance(child.tag, str):
            continue
        qname = etree.QName(child)
        if qname.namespace != IDEN or qname.localname not in _IDENTIFIER_PARTS:
            raise SoapProtocolError(f"xrd:{name} holds an unexpected element {qname.localname}", field=name)
        if qname.localname in parts:
            raise SoapProtocolError(f"xrd:{name} holds iden:{qname.localname} twice", field=name)
        parts[qname.localname] = (child.text or "").strip()
    return object_type, parts


def _joined(parts: dict[str, str], names: tuple[str, ...], name: str) -> str:
    for part in names:
        if part not in parts:
            raise SoapProtocolError(f"xrd:{name} lacks iden:{part}", field=name)
    # Each part is percent-encoded, so a '/' inside a value stays inside it and the parser refuses it.
    return "/".join(quote(parts[part], safe="") for part in names)


def _client(element: etree._Element) -> ClientId:
    object_type, parts = _parts(element, "client")
    member = ("xRoadInstance", "memberClass", "memberCode")
    expected = {"MEMBER": member, "SUBSYSTEM": (*member, "subsystemCode")}.get(object_type)
    if expected is None:
        raise SoapProtocolError(
            f"xrd:client has objectType {object_type!r}; expected MEMBER or SUBSYSTEM", field="client"
        )
    if set(parts) - set(expected):
        extra = ", ".join(sorted(set(parts) - set(expected)))
        raise SoapProtocolError(f"xrd:client ({object_type}) must not hold {extra}", field="client")
    try:
        return parse_client(_joined(parts, expected, "client"))
    except IdentifierError as exc:
        raise SoapProtocolError(f"xrd:client: {exc}", field="client") from exc


def _service(element: etree._Element) -> ServiceId:
    object_type, parts = _parts(element, "service")
    if object_type != "SERVICE":
        raise SoapProtocolError(
            f"xrd:service has objectType {object_type!r}; expected SERVICE", field="service"
        )
    provider = ("xRoadInstance", "memberClass", "memberCode", "subsystemCode")
    try:
        owner = SubsystemId.parse(_joined(parts, provider, "service"))
        code = _joined(parts, ("serviceCode",), "service")
        version = _joined(parts, ("serviceVersion",), "service") if "serviceVersion" in parts else None
        return ServiceId.from_parts(owner, code, version)
    except IdentifierError as exc:
        raise SoapProtocolError(f"xrd:service: {exc}", field="service") from exc


def request_hash(raw: bytes) -> str:
    """base64 SHA-512 of the request SOAP message, as X-Road's ``requestHash``."""
    return base64.b64encode(hashlib.sha512(raw).digest()).decode("ascii")


def _echo(header: etree._Element, xroad: XRoadHeaders, raw: bytes) -> None:
    # The request's X-Road headers first, in their order, then the hash of the request as received.
    for position, element in enumerate(xroad.elements):
        header.insert(position, copy.deepcopy(element))
    digest = etree.Element(f"{{{XROAD}}}requestHash", nsmap={"xrd": XROAD})
    digest.set("algorithmId", SHA512_URI)
    digest.text = request_hash(raw)
    header.insert(len(xroad.elements), digest)


def response(payload: etree._Element, request: SoapMessage | None) -> bytes:
    """A SOAP 1.1 response around `payload`, echoing the request's X-Road headers and its hash."""
    root = etree.Element(_ENVELOPE, nsmap=_NSMAP)  # type: ignore[arg-type]
    if request is not None and request.xroad is not None:
        _echo(etree.SubElement(root, _HEADER), request.xroad, request.raw)
    etree.SubElement(root, _BODY).append(payload)
    return etree.tostring(root, encoding="utf-8", xml_declaration=True)


def with_echo(answer: etree._Element, request: SoapMessage) -> bytes:
    """A service's own SOAP response with the request's X-Road headers (and hash) in front of its header.

    X-Road headers the service wrote itself are replaced, so the echo is exactly the request's.
    """
    if request.xroad is None:
        return etree.tostring(answer, encoding="utf-8", xml_declaration=True)
    header = answer.find(_HEADER)
    if header is None:
        header = etree.Element(_HEADER)
        answer.insert(0, header)
    for element in [child for child in header if isinstance(child.tag, str) and _in_xroad(child)]:
        header.remove(element)
    _echo(header, request.xroad, request.raw)
    return etree.tostring(answer, encoding="utf-8", xml_declaration=True)


def is_fault(root: etree._Element) -> bool:
    """Whether a parsed SOAP 1.1 envelope answers with a Fault."""
    body = root.find(_BODY)
    return body is not None and body.find(_FAULT) is not None


def is_envelope(root: etree._Element) -> bool:
    return root.tag == _ENVELOPE and root.find(_BODY) is not None


def fault(error_type: str, message: str, *, client_fault: bool, field: str | None = None) -> bytes:
    """A SOAP 1.1 Fault: ``faultcode`` SOAP-ENV:<X-Road type>, the message, a detail with type and field."""
    code = error_type
    if not code.startswith(("Client", "Server")):
        code = f"{'Client' if client_fault else 'Server'}.{code}"
    root = etree.Element(_ENVELOPE, nsmap=_NSMAP)  # type: ignore[arg-type]
    node = etree.SubElement(etree.SubElement(root, _BODY), _FAULT)
    etree.SubElement(node, "faultcode").text = f"SOAP-ENV:{code}"
    etree.SubElement(node, "faultstring").text = message
    detail = etree.SubElement(node, "detail")
    etree.SubElement(detail, f"{{{FAULT_NS}}}type", nsmap={"lgsp": FAULT_NS}).text = error_type
    if field:
        etree.SubElement(detail, f"{{{FAULT_NS}}}field", nsmap={"lgsp": FAULT_NS}).text = field
    return etree.tostring(root, encoding="utf-8", xml_declaration=True)


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


__all__ = [
    "CONTENT_TYPE",
    "FAULT_NS",
    "IDEN",
    "PROTOCOL_VERSION",
    "SHA512_URI",
    "SOAP_ENV",
    "XML_TYPES",
    "XROAD",
    "XSI",
    "SoapMessage",
    "XRoadHeaders",
    "fault",
    "is_envelope",
    "is_fault",
    "media_type",
    "read_message",
    "request_hash",
    "response",
    "with_echo",
]
