"""edXML (QCVN 102:2016) packages and status messages: build, sign, parse safely, validate, read.

For the hub, the tests, the demo and integrators alike. Building::

    header = PackageHeader(
        sender=Organization("000.00.00.H40", organ_name="UBND tỉnh"),
        recipients=(Organization("H40.12"),),
        document_id=document_id("000.00.00.H40", date(2024, 5, 2), "123", "UBND-VP"),
        subject="Về việc ...",
    )
    data = sign_package(build_package(header, [Attachment("cid:1", "a.pdf", "application/pdf", pdf)]), key, cert)

Reading untrusted bytes: ``root = parse_edxml(data)``, ``EdxmlSchema().validate(root)``, then
``read_package(root)`` or ``read_status(root)`` (``kind_of(root)`` says which). Dates are ``yyyy/MM/dd``,
timestamps ``yyyy/MM/dd HH:mm:ss`` in Vietnam time (UTC+7).
"""

import base64
import functools
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from enum import IntEnum, StrEnum
from importlib.resources import files
from typing import Any, Literal, cast

from cryptography import x509
from lxml import etree

from hub.edocs.errors import PackageInvalid, PackageMalformed, PackageTooLarge
from signing.errors import Reason, SigningError, XmlMalformed, XmlRefused
from signing.safe_xml import XmlLimits, parse_xml, parse_xml_chunks
from signing.xmldsig import DS_NS, SigningKey, sign_xml

NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
VN_TIME = timezone(timedelta(hours=7), "ICT")
DATE_FORMAT = "%Y/%m/%d"
TIMESTAMP_FORMAT = "%Y/%m/%d %H:%M:%S"
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
NAMESPACES = {"e": NS, "ds": DS_NS}
_DEFAULT_NS: Any = {None: NS}
_DS_DEFAULT_NS: Any = {None: DS_NS}


def q(name: str) -> str:
    """The Clark name of an edXML element."""
    return f"{{{NS}}}{name}"


class StatusCode(StrEnum):
    """The nine status codes of QĐ 28/2018/QĐ-TTg."""

    ARRIVED = "01"
    REJECTED = "02"
    ACCEPTED = "03"
    ASSIGNED = "04"
    PROCESSING = "05"
    DONE = "06"
    RECALL_REQUESTED = "13"
    RECALL_ACCEPTED = "15"
    RECALL_REFUSED = "16"


class BusinessDocType(IntEnum):
    """What a package does: a new document, or a revocation, update or replacement of an earlier one."""

    NEW = 0
    REVOKE = 1
    UPDATE = 2
    REPLACE = 3


@dataclass(frozen=True, slots=True)
class Organization:
    organ_id: str
    organization_in_charge: str = ""
    organ_name: str = ""
    organ_add: str = ""
    email: str = ""
    telephone: str = ""
    fax: str = ""
    website: str = ""


@dataclass(frozen=True, slots=True)
class StaffInfo:
    department: str = ""
    staff: str = ""
    mobile: str = ""
    email: str = ""


@dataclass(frozen=True, slots=True)
class ResponseFor:
    organ_id: str
    document_id: str
    code: str = ""
    promulgation_date: str = ""


@dataclass(frozen=True, slots=True)
class TraceEntry:
    organ_id: str
    timestamp: str


@dataclass(frozen=True, slots=True)
class Business:
    """``TraceHeaderList/Bussiness``: the package's business type and the document it refers to."""

    doc_type: BusinessDocType = BusinessDocType.NEW
    document_id: str = ""
    reason: str = ""
    paper: int | None = None


@dataclass(frozen=True, slots=True)
class ManifestReference:
    content_id: str
    content_type: str = ""
    description: str = ""
    attachment_name: str = ""


@dataclass(frozen=True, slots=True)
class Attachment:
    """An attachment to build into a package (its bytes are base64-encoded by the builder)."""

    content_id: str
    name: str
    content_type: str
    data: bytes
    description: str = ""


@dataclass(frozen=True, slots=True)
class PackageHeader:
    """What a package's ``MessageHeader`` and ``TraceHeaderList`` say."""

    sender: Organization
    recipients: tuple[Organization, ...]
    document_id: str
    subject: str
    code_number: str = ""
    code_notation: str = ""
    place: str = ""
    promulgation_date: str = ""
    doc_type: int | None = None
    type_detail: int | None = None
    type_name: str = ""
    content: str = ""
    signer_competence: str = ""
    signer_position: str = ""
    signer_full_name: str = ""
    due_date: str = ""
    priority: int | None = None
    response_for: tuple[ResponseFor, ...] = ()
    steering_type: int | None = None
    to_places: tuple[str, ...] = ()
    business: Business = Business()
    traces: tuple[TraceEntry, ...] = ()
    manifest: tuple[ManifestReference, ...] = ()

    @property
    def code(self) -> str:
        """``CodeNumber/CodeNotation``, as written on the document."""
        return "/".join(p for p in (self.code_number, self.code_notation) if p)


@dataclass(frozen=True, slots=True)
class StatusMessage:
    """An edXML status (feedback) message."""

    sender: Organization
    response_for: ResponseFor
    code: StatusCode
    timestamp: str
    description: str = ""
    staff: StaffInfo | None = None


@dataclass(frozen=True, slots=True)
class SchemaError:
    element: str
    line: int
    message: str


# ---- dates -------------------------------------------------------------------------------------------


def format_date(day: date | datetime) -> str:
    """``yyyy/MM/dd`` (a datetime is converted to Vietnam time first)."""
    if isinstance(day, datetime):
        day = day.astimezone(VN_TIME)
    return f"{day.year:04d}/{day.month:02d}/{day.day:02d}"


def format_timestamp(moment: datetime | None = None) -> str:
    """``yyyy/MM/dd HH:mm:ss`` in Vietnam time (now when omitted)."""
    # Formatted by hand: strftime goes through the C library, which looks at /etc/localtime (a stat
    # system call) on every call when TZ is not set; on the submission path that was ~1 % of the CPU.
    at = (moment or datetime.now(UTC)).astimezone(VN_TIME)
    return f"{at.year:04d}/{at.month:02d}/{at.day:02d} {at.hour:02d}:{at.minute:02d}:{at.second:02d}"


def parse_timestamp(text: str) -> datetime:
    """A ``yyyy/MM/dd HH:mm:ss`` Vietnam-time timestamp as an aware datetime.

    Raises:
        ValueError: the text is not in that format.
    """
    return datetime.strptime(text, TIMESTAMP_FORMAT).replace(tzinfo=VN_TIME)


def document_id(organ_id: str, day: date, number: str, notation: str) -> str:
    """A DocumentId in the usual shape ``OrganId,yyyy/MM/dd,number/notation``."""
    return f"{organ_id},{format_date(day)},{number}/{notation}"


# ---- building ----------------------------------------------------------------------------------------


def _sub(parent: etree._Element, name: str, text: object = None) -> etree._Element:
    element = etree.SubElement(parent, q(name))
    if text is not None:
        element.text = str(text)
    return element


def _opt(parent: etree._Element, name: str, text: object) -> None:
    if text not in (None, ""):
        _sub(parent, name, text)


def _organization(parent: etree._Element, name: str, org: Organization) -> None:
    node = _sub(parent, name)
    _sub(node, "OrganId", org.organ_id)
    for tag, value in (
        ("OrganizationInCharge", org.organization_in_charge),
        ("OrganName", org.organ_name),
        ("OrganAdd", org.organ_add),
        ("Email", org.email),
        ("Telephone", org.telephone),
        ("Fax", org.fax),
        ("Website", org.website),
    ):
        _opt(node, tag, value)


def _response_for(parent: etree._Element, response: ResponseFor) -> None:
    node = _sub(parent, "ResponseFor")
    _sub(node, "OrganId", response.organ_id)
    _opt(node, "Code", response.code)
    _opt(node, "PromulgationDate", response.promulgation_date)
    _sub(node, "DocumentId", response.document_id)


def _staff(parent: etree._Element, staff: StaffInfo) -> None:
    node = _sub(parent, "StaffInfo")
    _opt(node, "Department", staff.department)
    _opt(node, "Staff", staff.staff)
    _opt(node, "Mobile", staff.mobile)
    _opt(node, "Email", staff.email)


def _envelope(root_name: str) -> tuple[etree._Element, etree._Element]:
    root = etree.Element(q(root_name), nsmap=_DEFAULT_NS)
    envelope = root if root_name == "edXMLEnvelope" else _sub(root, "edXMLEnvelope")
    return root, _sub(envelope, "edXMLHeader")


def _serialize(root: etree._Element) -> bytes:
    return XML_DECLARATION + etree.tostring(root, encoding="UTF-8")


def build_package(
    header: PackageHeader,
    attachments: Sequence[Attachment] = (),
    *,
    traces: Sequence[TraceEntry] | None = None,
) -> bytes:
    """Build an unsigned edXML package (root ``edXML``; attachments in ``AttachmentEncoded``).

    ``traces`` defaults to one TraceHeader from the sender, now; the manifest lists every attachment.
    """
    root, head = _envelope("edXML")
    message = _sub(head, "MessageHeader")
    _organization(message, "From", header.sender)
    for recipient in header.recipients:
        _organization(message, "To", recipient)
    _sub(message, "DocumentId", header.document_id)
    if header.code_number or header.code_notation:
        code = _sub(message, "Code")
        _opt(code, "CodeNumber", header.code_number)
        _opt(code, "CodeNotation", header.code_notation)
    if header.place or header.promulgation_date:
        info = _sub(message, "PromulgationInfo")
        _opt(info, "Place", header.place)
        _opt(info, "PromulgationDate", header.promulgation_date)
    if header.doc_type is not None or header.type_name:
        kind = _sub(message, "DocumentType")
        _opt(kind, "Type", header.doc_type)
        _opt(kind, "TypeDetail", header.type_detail)
        _opt(kind, "TypeName", header.type_name)
    _sub(message, "Subject", header.subject)
    _opt(message, "Content", header.content)
    if header.signer_full_name or header.signer_position or header.signer_competence:
        signer = _sub(message, "SignerInfo")
        _opt(signer, "Competence", header.signer_competence)
        _opt(signer, "Position", header.signer_position)
        _opt(signer, "FullName", header.signer_full_name)
    _opt(message, "DueDate", header.due_date)
    if header.priority is not None:
        _sub(_sub(message, "OtherInfo"), "Priority", header.priority)
    for response in header.response_for:
        _response_for(message, response)
    _opt(message, "SteeringType", header.steering_type)
    if header.to_places:
        places = _sub(message, "ToPlaces")
        for place in header.to_places:
            _sub(places, "Place", place)
    trace_list = _sub(head, "TraceHeaderList")
    for entry in traces if traces is not None else (TraceEntry(header.sender.organ_id, format_timestamp()),):
        trace = _sub(trace_list, "TraceHeader")
        _sub(trace, "OrganId", entry.organ_id)
        _sub(trace, "Timestamp", entry.timestamp)
    business = _sub(trace_list, "Bussiness")
    _opt(business, "DocumentId", header.business.document_id)
    _sub(business, "BussinessDocType", int(header.business.doc_type))
    _opt(business, "BussinessDocReason", header.business.reason)
    _opt(business, "Paper", header.business.paper)
    envelope = head.getparent()
    assert envelope is not None
    manifest = _sub(_sub(envelope, "edXMLBody"), "edXMLManifest")
    manifest.set("version", "1.0")
    for attachment in attachments:
        reference = _sub(manifest, "Reference")
        _sub(reference, "ContentId", attachment.content_id)
        _sub(reference, "ContentType", attachment.content_type)
        _opt(reference, "Description", attachment.description)
        _sub(reference, "AttachmentName", attachment.name)
    if attachments:
        encoded = _sub(root, "AttachmentEncoded")
        for attachment in attachments:
            node = _sub(encoded, "Attachment")
            _sub(node, "ContentId", attachment.content_id)
            _sub(node, "AttachmentName", attachment.name)
            _opt(node, "Description", attachment.description)
            _sub(node, "ContentType", attachment.content_type)
            _sub(node, "ContentTransferEncoded", base64.b64encode(attachment.data).decode("ascii"))
    return _serialize(root)


def build_status(status: StatusMessage) -> bytes:
    """Build an unsigned edXML status message (no body)."""
    root, head = _envelope("edXML")
    message = _sub(head, "MessageHeader")
    _organization(message, "From", status.sender)
    _response_for(message, status.response_for)
    if status.staff is not None:
        _staff(message, status.staff)
    _sub(message, "StatusCode", status.code.value)
    _opt(message, "Description", status.description)
    _sub(message, "Timestamp", status.timestamp)
    return _serialize(root)


def sign_package(
    data: bytes, key: SigningKey, certificate: x509.Certificate | Sequence[x509.Certificate]
) -> bytes:
    """Sign a package or status message: an enveloped XML-DSig over the whole document (URI=""), as a
    default-namespace ``Signature`` element last in ``edXMLHeader``, with the signer's certificate chain.

    Raises:
        PackageMalformed: ``data`` is refused by the safe parser.
        PackageInvalid: ``data`` has no edXMLHeader.
        SigningFailed: the signature could not be produced.
    """
    root = parse_edxml(data)
    head = _header_element(root)
    if head is None:
        raise PackageInvalid("no edXMLHeader to carry the signature", element="edXMLHeader")
    for old in head.findall(f"{{{DS_NS}}}Signature"):
        head.remove(old)
    placeholder = etree.SubElement(head, f"{{{DS_NS}}}Signature", nsmap=_DS_DEFAULT_NS)
    placeholder.set("Id", "placeholder")
    return XML_DECLARATION + sign_xml(root, key, certificate)


# ---- parsing and validation --------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _limits(max_bytes: int) -> XmlLimits:
    return XmlLimits(max_bytes=max_bytes, huge_text=True)


def parse_edxml(data: bytes | Iterable[bytes], *, max_bytes: int = 50 * 1024 * 1024) -> etree._Element:
    """Parse untrusted bytes, or pieces of them (a spooled body), with the project's safe parser (no DTD,
    no entities, bounded). An attachment may be one text node of any length under ``max_bytes``.

    Raises:
        PackageTooLarge: over ``max_bytes``.
        PackageMalformed: not well-formed, or a DTD / entity / depth / element-count refusal.
    """
    limits = _limits(max_bytes)
    try:
        if isinstance(data, bytes | bytearray):
            return parse_xml(bytes(data), limits=limits)
        return parse_xml_chunks(data, limits=limits)
    except XmlRefused as exc:
        if exc.reason is Reason.TOO_LARGE:
            raise PackageTooLarge(f"the package is larger than {max_bytes} bytes", limit=max_bytes) from exc
        raise PackageMalformed(f"the XML is refused: {exc}", reason=exc.reason.value) from exc
    except XmlMalformed as exc:
        raise PackageMalformed(f"the XML is not well-formed: {exc.detail}", reason=exc.reason.value) from exc


def _localname(tag: object) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else str(tag)


def _short(message: str) -> str:
    return message.replace(f"{{{NS}}}", "").replace(f"{{{DS_NS}}}", "ds:")


class EdxmlSchema:
    """The vendored XSD (hub/edocs/schemas/edxml.xsd); one compiled schema per thread."""

    def __init__(self) -> None:
        self._source = files("hub.edocs").joinpath("schemas/edxml.xsd").read_bytes()
        self._local = threading.local()

    def _schema(self) -> etree.XMLSchema:
        schema = getattr(self._local, "schema", None)
        if schema is None:
            schema = etree.XMLSchema(etree.fromstring(self._source))
            self._local.schema = schema
        return schema

    def errors(self, root: etree._Element) -> list[SchemaError]:
        """Every schema violation in ``root`` (empty when valid)."""
        schema = self._schema()
        if schema.validate(root):
            return []
        found = []
        for entry in cast(Iterable[Any], schema.error_log):
            element = _short(entry.message).split("'", 2)[1] if entry.message.startswith("Element '") else ""
            found.append(SchemaError(element or _localname(root.tag), entry.line, _short(entry.message)))
        return found

    def validate(self, root: etree._Element) -> None:
        """Check ``root`` against the edXML schema.

        Raises:
            PackageInvalid: the first violation, naming the element and line.
        """
        if etree.QName(root).namespace != NS:
            raise PackageInvalid(
                f"the root element <{_localname(root.tag)}> is not in the edXML namespace {NS}",
                element=_localname(root.tag),
                line=cast(int | None, root.sourceline),
            )
        errors = self.errors(root)
        if errors:
            first = errors[0]
            raise PackageInvalid(
                f"edXML schema: {first.message} (line {first.line})", element=first.element, line=first.line
            )


# ---- reading -----------------------------------------------------------------------------------------


def envelope_element(root: etree._Element) -> etree._Element | None:
    """``edXMLEnvelope``: the root itself, or the root ``edXML``'s child."""
    if root.tag == q("edXMLEnvelope"):
        return root
    return _child(root, "edXMLEnvelope")


def _header_element(root: etree._Element) -> etree._Element | None:
    envelope = envelope_element(root)
    return None if envelope is None else _child(envelope, "edXMLHeader")


def sender_of(root: etree._Element) -> str:
    """``MessageHeader/From/OrganId`` of a (schema-valid) message."""
    return _text(message_header(root), "e:From/e:OrganId")


def message_header(root: etree._Element) -> etree._Element:
    """``edXMLHeader/MessageHeader``.

    Raises:
        PackageInvalid: it is missing.
    """
    head = _header_element(root)
    message = None if head is None else _child(head, "MessageHeader")
    if message is None:
        raise PackageInvalid("edXMLEnvelope/edXMLHeader/MessageHeader is missing", element="MessageHeader")
    return message


def kind_of(root: etree._Element) -> Literal["package", "status"]:
    """Whether a (schema-valid) message is a document package or a status message."""
    return "status" if _child(message_header(root), "StatusCode") is not None else "package"


def _child(node: etree._Element, name: str) -> etree._Element | None:
    # node.find(q(name)) by lxml's tag-filtered child iterator, in C: find() evaluates an ElementPath
    # on every call (several µs each).
    return next(node.iterchildren(q(name)), None)


@functools.lru_cache(maxsize=256)
def _steps(path: str) -> tuple[str, ...]:
    return tuple(q(step[2:]) if step.startswith("e:") else step for step in path.split("/"))


def _first(node: etree._Element, steps: Sequence[str]) -> etree._Element | None:
    # As node.find("a/b"): the first match in document order.
    for child in node.iterchildren(steps[0]):
        found = child if len(steps) == 1 else _first(child, steps[1:])
        if found is not None:
            return found
    return None


def _text(node: etree._Element | None, path: str) -> str:
    found = None if node is None else _first(node, _steps(path))
    text = None if found is None else found.text
    return text.strip() if text else ""


class _Children:
    """An element's children by tag, gathered in one pass. lxml's ``find``/``findtext`` evaluate an
    ElementPath on every call (several µs each), and reading a package header takes some fifty."""

    __slots__ = ("_by_tag",)

    def __init__(self, node: etree._Element | None) -> None:
        by_tag: dict[object, list[etree._Element]] = {}
        if node is not None:
            for child in node:
                by_tag.setdefault(child.tag, []).append(child)
        self._by_tag = by_tag

    def all(self, name: str) -> list[etree._Element]:
        return self._by_tag.get(q(name), [])

    def first(self, name: str) -> etree._Element | None:
        found = self._by_tag.get(q(name))
        return found[0] if found else None

    def text(self, name: str, inner: str | None = None) -> str:
        # As _text(node, "e:name[/e:inner]"): the first match in document order, stripped.
        tag = q(inner) if inner is not None else None
        for node in self._by_tag.get(q(name), ()):
            found = node if tag is None else next(node.iterchildren(tag), None)
            if found is not None:
                text = found.text
                return text.strip() if text else ""
        return ""

    def int(self, name: str, inner: str | None = None) -> int | None:
        return _number(self.text(name, inner))


def _texts(node: etree._Element | None) -> dict[str, str]:
    """Each child's stripped text by tag, the first of a tag winning: one pass over a group whose
    children the schema allows once each (an ``xs:all``)."""
    texts: dict[str, str] = {}
    if node is not None:
        for child in node:
            tag = child.tag
            if tag not in texts:
                text = child.text
                texts[tag] = text.strip() if text else ""
    return texts


def _number(text: str | None) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None


_ORGANIZATION = tuple(
    q(name)
    for name in (
        "OrganId",
        "OrganizationInCharge",
        "OrganName",
        "OrganAdd",
        "Email",
        "Telephone",
        "Fax",
        "Website",
    )
)
_RESPONSE_FOR = tuple(q(name) for name in ("OrganId", "DocumentId", "Code", "PromulgationDate"))


def _read_organization(node: etree._Element) -> Organization:
    texts = _texts(node)
    return Organization(*[texts.get(tag, "") for tag in _ORGANIZATION])


def _read_response_for(node: etree._Element) -> ResponseFor:
    texts = _texts(node)
    return ResponseFor(*[texts.get(tag, "") for tag in _RESPONSE_FOR])


def _read_business(trace_list: _Children) -> Business:
    nodes = trace_list.all("Bussiness") + trace_list.all("Business")
    if len(nodes) > 1:
        raise PackageInvalid("TraceHeaderList has more than one Bussiness element", element="Bussiness")
    if not nodes:
        return Business()
    texts = _texts(nodes[0])
    return Business(
        doc_type=BusinessDocType(_number(texts.get(q("BussinessDocType"))) or 0),
        document_id=texts.get(q("DocumentId"), ""),
        reason=texts.get(q("BussinessDocReason"), ""),
        paper=_number(texts.get(q("Paper"))),
    )


def read_package(root: etree._Element, *, content: bool = True) -> PackageHeader:
    """Read a schema-valid package's header (never the attachments' content).

    ``content=False`` leaves ``Content`` (the document's text, often the longest field) unread: the
    header's ``content`` is then empty.

    Raises:
        PackageInvalid: it is a status message, or a rule the schema cannot express is broken.
    """
    message = message_header(root)
    fields = _Children(message)
    if fields.first("StatusCode") is not None:
        raise PackageInvalid("this is a status message, not a document package", element="StatusCode")
    recipients = tuple(_read_organization(n) for n in fields.all("To"))
    seen: set[str] = set()
    for recipient in recipients:
        if recipient.organ_id in seen:
            raise PackageInvalid(
                f"To/OrganId {recipient.organ_id} appears more than once", element="To/OrganId"
            )
        seen.add(recipient.organ_id)
    head = message.getparent()
    trace_list = _Children(_Children(head).first("TraceHeaderList") if head is not None else None)
    traces = tuple(
        TraceEntry(texts.get(q("OrganId"), ""), texts.get(q("Timestamp"), ""))
        for texts in map(_texts, trace_list.all("TraceHeader"))
    )
    envelope = envelope_element(root)
    manifest = tuple(
        ManifestReference(
            content_id=texts.get(q("ContentId"), ""),
            content_type=texts.get(q("ContentType"), ""),
            description=texts.get(q("Description"), ""),
            attachment_name=texts.get(q("AttachmentName"), ""),
        )
        for texts in map(
            _texts,
            envelope.iterfind("e:edXMLBody/e:edXMLManifest/e:Reference", NAMESPACES)
            if envelope is not None
            else (),
        )
    )
    from_node = fields.first("From")
    assert from_node is not None
    code = _texts(fields.first("Code"))
    promulgation = _texts(fields.first("PromulgationInfo"))
    document_type = _texts(fields.first("DocumentType"))
    signer = _texts(fields.first("SignerInfo"))
    other = _texts(fields.first("OtherInfo"))
    return PackageHeader(
        sender=_read_organization(from_node),
        recipients=recipients,
        document_id=fields.text("DocumentId"),
        subject=fields.text("Subject"),
        code_number=code.get(q("CodeNumber"), ""),
        code_notation=code.get(q("CodeNotation"), ""),
        place=promulgation.get(q("Place"), ""),
        promulgation_date=promulgation.get(q("PromulgationDate"), ""),
        doc_type=_number(document_type.get(q("Type"))),
        type_detail=_number(document_type.get(q("TypeDetail"))),
        type_name=document_type.get(q("TypeName"), ""),
        content=fields.text("Content") if content else "",
        signer_competence=signer.get(q("Competence"), ""),
        signer_position=signer.get(q("Position"), ""),
        signer_full_name=signer.get(q("FullName"), ""),
        due_date=fields.text("DueDate"),
        priority=_number(other.get(q("Priority"))),
        response_for=tuple(_read_response_for(n) for n in fields.all("ResponseFor")),
        steering_type=fields.int("SteeringType"),
        to_places=tuple(
            (place.text or "").strip()
            for places in fields.all("ToPlaces")
            for place in places.iterchildren(q("Place"))
        ),
        business=_read_business(trace_list),
        traces=traces,
        manifest=manifest,
    )


def read_status(root: etree._Element) -> StatusMessage:
    """Read a schema-valid status message.

    Raises:
        PackageInvalid: it is a document package.
    """
    message = message_header(root)
    if _child(message, "StatusCode") is None:
        raise PackageInvalid("this is a document package, not a status message", element="StatusCode")
    from_node = _child(message, "From")
    response = _child(message, "ResponseFor")
    assert from_node is not None and response is not None
    staff_node = _child(message, "StaffInfo")
    staff = (
        StaffInfo(
            department=_text(staff_node, "e:Department"),
            staff=_text(staff_node, "e:Staff"),
            mobile=_text(staff_node, "e:Mobile"),
            email=_text(staff_node, "e:Email"),
        )
        if staff_node is not None
        else None
    )
    return StatusMessage(
        sender=_read_organization(from_node),
        response_for=_read_response_for(response),
        code=StatusCode(_text(message, "e:StatusCode")),
        timestamp=_text(message, "e:Timestamp"),
        description=_text(message, "e:Description"),
        staff=staff,
    )


def has_signature(root: etree._Element) -> bool:
    """Whether the message carries an XML-DSig ``Signature`` anywhere."""
    return next(root.iter(f"{{{DS_NS}}}Signature"), None) is not None


def append_trace(root: etree._Element, organ_id: str, timestamp: str) -> etree._Element:
    """Append a TraceHeader after the last one in ``TraceHeaderList`` (created when absent); no
    whitespace is added, so removing the element again restores the signed content exactly."""
    head = _header_element(root)
    if head is None:
        raise PackageInvalid("edXMLHeader is missing", element="edXMLHeader")
    trace_list = _child(head, "TraceHeaderList")
    if trace_list is None:
        trace_list = etree.Element(q("TraceHeaderList"))
        message = _child(head, "MessageHeader")
        position = head.index(message) + 1 if message is not None else 0
        head.insert(position, trace_list)
    existing = list(trace_list.iterchildren(q("TraceHeader")))
    trace = _sub(trace_list, "TraceHeader")  # created in place so it takes the in-scope namespace prefix
    _sub(trace, "OrganId", organ_id)
    _sub(trace, "Timestamp", timestamp)
    if existing:
        existing[-1].addnext(trace)
    return trace


def strip_hub_trace(root: etree._Element, organ_id: str) -> bool:
    """Remove the last TraceHeader whose OrganId is ``organ_id`` (the hub's), restoring what the sender
    signed; True when one was removed. Recipients verify the sender's signature after this."""
    head = _header_element(root)
    trace_list = None if head is None else _child(head, "TraceHeaderList")
    if trace_list is None:
        return False
    for trace in reversed(list(trace_list.iterchildren(q("TraceHeader")))):
        if _text(trace, "e:OrganId") == organ_id:
            previous = trace.getprevious()
            if previous is not None:
                previous.tail = (previous.tail or "") + (trace.tail or "") or None
            else:
                trace_list.text = (trace_list.text or "") + (trace.tail or "") or None
            trace_list.remove(trace)
            return True
    return False


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """A safely parsed, schema-valid message."""

    root: etree._Element
    kind: Literal["package", "status"]
    signed: bool = field(default=False)


def load_message(data: bytes, schema: EdxmlSchema, *, max_bytes: int = 50 * 1024 * 1024) -> ParsedMessage:
    """Parse and validate untrusted bytes: safe parser, then the edXML schema.

    Raises:
        PackageTooLarge, PackageMalformed, PackageInvalid: as for parse_edxml and EdxmlSchema.validate.
    """
    root = parse_edxml(data, max_bytes=max_bytes)
    schema.validate(root)
    return ParsedMessage(root, kind_of(root), has_signature(root))


__all__ = [
    "DATE_FORMAT",
    "NAMESPACES",
    "NS",
    "TIMESTAMP_FORMAT",
    "VN_TIME",
    "XML_DECLARATION",
    "Attachment",
    "Business",
    "BusinessDocType",
    "EdxmlSchema",
    "ManifestReference",
    "Organization",
    "PackageHeader",
    "ParsedMessage",
    "ResponseFor",
    "SchemaError",
    "SigningError",
    "StaffInfo",
    "StatusCode",
    "StatusMessage",
    "TraceEntry",
    "append_trace",
    "build_package",
    "build_status",
    "document_id",
    "envelope_element",
    "format_date",
    "format_timestamp",
    "has_signature",
    "kind_of",
    "load_message",
    "message_header",
    "parse_edxml",
    "parse_timestamp",
    "q",
    "read_package",
    "read_status",
    "sender_of",
    "sign_package",
    "strip_hub_trace",
]
