"""SOAP 1.1 pieces shared by the sandbox and the connector: envelope, XSD check, faults, auth.

Faults follow SOAP 1.1 (HTTP 500, ``faultcode``/``faultstring``/``detail``); the detail is a
``ThongTinLoi{MaLoi, MoTa, TruongDuLieu?}`` element of the national namespace. The error codes
and the dotted fault codes are ⚠ inferred: the public specs do not list them.
"""

import base64
import hashlib
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from lxml import etree

from hub.errors import InvalidInput
from signing import XmlError, XmlLimits, parse_xml

NS = "http://dancuquocgia.bca"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
HERE = Path(__file__).resolve().parent
WSDL_PATH = HERE / "dancuquocgia.wsdl"
XSD_PATH = HERE / "dancuquocgia.xsd"
SOAP_CONTENT_TYPE = "text/xml; charset=utf-8"
LOOKUP = "TraCuuThongTinCongDan"
VERIFY = "XacThucThongTinCongDan"
LIMITS = XmlLimits(max_bytes=1024 * 1024, max_depth=32, max_elements=10_000)

_ENVELOPE = f"{{{SOAP_ENV}}}Envelope"
_BODY = f"{{{SOAP_ENV}}}Body"
_FAULT = f"{{{SOAP_ENV}}}Fault"
_XSD_ELEMENT = re.compile(r"Element '(?:\{[^}]*\})?([^']+)'")
_XSD_EXPECTED = re.compile(r"Expected is(?: one of)? \( (?:\{[^}]*\})?([^ ,)]+)")


class ErrorCode(StrEnum):
    """``MaLoi``: the national system's error code in a fault's detail."""

    NOT_FOUND = "KHONG_TIM_THAY"
    INVALID = "DU_LIEU_KHONG_HOP_LE"
    AUTH = "XAC_THUC_THAT_BAI"
    DUPLICATE = "TRUNG_MA_YEU_CAU"
    SERVER = "LOI_HE_THONG"
    TIMEOUT = "QUA_THOI_GIAN"


FAULT_CODES: dict[ErrorCode, str] = {
    ErrorCode.NOT_FOUND: "Client.NotFound",
    ErrorCode.INVALID: "Client.Validation",
    ErrorCode.AUTH: "Client.Authentication",
    ErrorCode.DUPLICATE: "Client.DuplicateRequest",
    ErrorCode.SERVER: "Server",
    ErrorCode.TIMEOUT: "Server.Timeout",
}


@dataclass(frozen=True, slots=True)
class Fault:
    """A SOAP fault as read from a response envelope."""

    faultcode: str
    faultstring: str
    code: str | None = None
    description: str | None = None
    field: str | None = None


def signature(url: str, user: str, timestamp_ms: int, secret: str) -> str:
    """``Authorization`` value: ``Basic base64(user + ":" + sha256hex(url + user + timestamp + secret))``."""
    digest = hashlib.sha256(f"{url}{user}{timestamp_ms}{secret}".encode()).hexdigest()
    return "Basic " + base64.b64encode(f"{user}:{digest}".encode()).decode("ascii")


def fault_envelope(code: ErrorCode, message: str, *, field: str | None = None) -> bytes:
    """A SOAP 1.1 fault envelope carrying ``ThongTinLoi`` in its detail."""
    envelope = etree.Element(_ENVELOPE, nsmap={"soap": SOAP_ENV})
    fault = etree.SubElement(etree.SubElement(envelope, _BODY), _FAULT)
    etree.SubElement(fault, "faultcode").text = f"soap:{FAULT_CODES[code]}"
    etree.SubElement(fault, "faultstring").text = message
    info = etree.SubElement(etree.SubElement(fault, "detail"), f"{{{NS}}}ThongTinLoi", nsmap={"dc": NS})
    etree.SubElement(info, f"{{{NS}}}MaLoi").text = code.value
    etree.SubElement(info, f"{{{NS}}}MoTa").text = message
    if field:
        etree.SubElement(info, f"{{{NS}}}TruongDuLieu").text = field
    return etree.tostring(envelope, encoding="utf-8", xml_declaration=True)


def envelope(payload: etree._Element) -> bytes:
    """A SOAP 1.1 envelope around one body element."""
    root = etree.Element(_ENVELOPE, nsmap={"soap": SOAP_ENV})
    etree.SubElement(root, _BODY).append(payload)
    return etree.tostring(root, encoding="utf-8", xml_declaration=True)


def read_fault(root: etree._Element) -> Fault | None:
    """The fault in a response envelope, or ``None`` when the body holds no fault."""
    body = root.find(_BODY)
    node = body.find(_FAULT) if body is not None else None
    if node is None:
        return None
    faultcode = (node.findtext("faultcode") or "").strip()
    info = node.find(f"detail/{{{NS}}}ThongTinLoi")
    return Fault(
        faultcode=faultcode.rpartition(":")[2] if ":" in faultcode else faultcode,
        faultstring=(node.findtext("faultstring") or "").strip(),
        code=info.findtext(f"{{{NS}}}MaLoi") if info is not None else None,
        description=info.findtext(f"{{{NS}}}MoTa") if info is not None else None,
        field=info.findtext(f"{{{NS}}}TruongDuLieu") if info is not None else None,
    )


def parse_envelope(data: bytes) -> etree._Element:
    """Safely parse a SOAP 1.1 envelope.

    Raises:
        InvalidInput: unsafe or malformed XML, or not a SOAP 1.1 envelope (field ``Envelope``).
    """
    try:
        root = parse_xml(data, limits=LIMITS)
    except XmlError as exc:
        raise InvalidInput(f"request refused: {exc}", field="Envelope") from exc
    if root.tag != _ENVELOPE or root.find(_BODY) is None:
        raise InvalidInput("request is not a SOAP 1.1 envelope with a Body", field="Envelope")
    return root


def body_payload(root: etree._Element) -> etree._Element:
    """The single element in an envelope's Body.

    Raises:
        InvalidInput: the Body is empty or holds more than one element (field ``Body``).
    """
    body = root.find(_BODY)
    children = [] if body is None else [child for child in body if isinstance(child.tag, str)]
    if len(children) != 1:
        raise InvalidInput(f"the SOAP Body must hold one element, found {len(children)}", field="Body")
    return children[0]


class Schema:
    """The vendored XSD, compiled once; validates request payloads and names the failing field."""

    def __init__(self, path: Path = XSD_PATH) -> None:
        self._schema = etree.XMLSchema(etree.parse(str(path)))

    def check(self, payload: etree._Element) -> None:
        """Validate one body element against the schema.

        Raises:
            InvalidInput: the payload does not match the schema; ``field`` names the element.
        """
        if self._schema.validate(payload):
            return
        log: Any = self._schema.error_log  # lxml-stubs leave _ErrorLog empty
        entry = log[0]
        message = entry.message
        expected = _XSD_EXPECTED.search(message)
        element = _XSD_ELEMENT.search(message)
        field = expected.group(1) if expected else element.group(1) if element else payload.tag
        raise InvalidInput(f"{field}: {message}", field=field)


def local_name(tag: str) -> str:
    """``{ns}Name`` → ``Name``."""
    return tag.rpartition("}")[2]


__all__ = [
    "FAULT_CODES",
    "LOOKUP",
    "NS",
    "SOAP_CONTENT_TYPE",
    "SOAP_ENV",
    "VERIFY",
    "WSDL_PATH",
    "XSD_PATH",
    "ErrorCode",
    "Fault",
    "Schema",
    "body_payload",
    "envelope",
    "fault_envelope",
    "local_name",
    "parse_envelope",
    "read_fault",
    "signature",
]
